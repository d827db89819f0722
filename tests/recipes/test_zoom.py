"""The infinite zoom: zoom_in's geometry, and ``cnnvis dream --zoom-frames`` end to end."""

from __future__ import annotations

import imageio.v3 as iio
import pytest
import torch
from conftest import assert_one_line_error, invoke

from cnnvis.errors import InputError
from cnnvis.io.manifest import read_manifest
from cnnvis.recipes.zoom import zoom_in


def test_zoom_in_magnifies_about_the_centre():
    h, w = 41, 61
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    img = torch.stack([xx / (w - 1), yy / (h - 1), torch.zeros_like(xx)])[None]
    z = zoom_in(img, 2.0)
    assert z.shape == img.shape
    # the centre stays put; a pixel at distance d from it now shows what was at d / 2
    assert torch.allclose(z[0, :2, 20, 30], img[0, :2, 20, 30], atol=1e-5)
    assert torch.allclose(z[0, 0, 20, 50], img[0, 0, 20, 40], atol=1e-5)
    assert torch.allclose(z[0, 1, 40, 30], img[0, 1, 30, 30], atol=1e-5)
    with pytest.raises(InputError, match="above 1"):
        zoom_in(img, 1.0)


def test_dream_zoom_frames_writes_an_animation(tmp_path, factory_module, make_image):
    src = make_image("s.png", h=40, w=48)
    out = tmp_path / "zoom.gif"
    res = invoke(
        [
            "dream",
            src,
            "--model",
            f"{factory_module}:factory",
            "--weights",
            "random",
            "--layer",
            "conv3",
            "--tile",
            32,
            "--steps",
            2,
            "--zoom-frames",
            3,
            "--zoom-scale",
            1.2,
            "-q",
            "--out",
            out,
        ]
    )
    assert res.exit_code == 0, (res.output, res.exception)
    frames = iio.imread(out, index=None)
    assert frames.shape[0] == 3 and frames.shape[1:3] == (40, 48)
    assert not (frames[0] == frames[1]).all()
    assert read_manifest(str(out))["params"]["zoom_frames"] == 3


def test_dream_zoom_bad_input(tmp_path, factory_module, make_image):
    src = make_image("s.png", h=40, w=48)
    base = [
        "dream",
        src,
        "--model",
        f"{factory_module}:factory",
        "--weights",
        "random",
        "--layer",
        "conv3",
        "-q",
        "--zoom-frames",
        2,
    ]
    assert_one_line_error(invoke(base + ["--out", tmp_path / "z.png"]), "video")
    assert_one_line_error(invoke(base + ["--zoom-scale", 0.9, "--out", tmp_path / "z.gif"]), "--zoom-scale", "x>1")
    assert_one_line_error(invoke(base + ["--noise", "--out", tmp_path / "z.gif"]), "--noise", "drop")


def test_zoom_frames_are_one_size_and_keep_the_dgn_latent_rate():
    from cnnvis.priors.spec import PriorSpec
    from cnnvis.recipes.dream import dream_config
    from cnnvis.recipes.recon import DGN_DEFAULTS

    cfg = dream_config({}, PriorSpec(prior="dgn"), zoom=True)
    assert cfg.octaves is None and cfg.num_sizes == 1 and cfg.latent_lr == DGN_DEFAULTS["latent_lr"]
    still = dream_config({}, PriorSpec())
    assert still.octaves == 4 and still.latent_lr is None
