"""``cnnvis invert`` and ``cnnvis prefer``: CliRunner round trips, a subprocess run, one-line errors."""

from __future__ import annotations

import json
import subprocess

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from conftest import assert_one_line_error as _assert_one_line_error
from conftest import build_tiny_cnn, smooth_rgb
from conftest import cnnvis_exe as _exe
from conftest import invoke as _invoke


@pytest.fixture
def tiny(factory_module):
    return ["--model", f"{factory_module}:factory", "--weights", "random"]


def _conv3_features(img_u8: np.ndarray) -> np.ndarray:
    net = build_tiny_cnn()
    x = torch.from_numpy(img_u8.astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        return net((x - 0.5) / 0.5)[0].numpy()


def test_invert_image_writes_image_and_metrics(tmp_path, tiny, make_image):
    src = make_image("in.png", h=40, w=40)
    out = tmp_path / "recon.png"
    res = _invoke(["invert", src, "--layer", "conv3", *tiny, "--size", "32x32", "--steps", 5, "-q", "--out", out])
    assert res.exit_code == 0, res.output
    assert iio.imread(out).shape == (32, 32, 3)
    m = json.loads((tmp_path / "recon.metrics.json").read_text())
    assert set(m) >= {"pixel_correlation", "ssim", "feature_error"} and "conv3" in m["feature_error"]
    assert -1 <= m["pixel_correlation"] <= 1
    assert "pixel correlation" in res.output


def test_invert_features_npz_round_trip(tmp_path, tiny, make_image):
    img = smooth_rgb(32, 32)
    np.savez(tmp_path / "f.npz", conv3=_conv3_features(img))
    orig = make_image("orig.png", array=img)
    out = tmp_path / "r.png"
    res = _invoke(
        [
            "invert",
            "--features",
            tmp_path / "f.npz",
            *tiny,
            "--size",
            "32x32",
            "--steps",
            30,
            "--original",
            orig,
            "-q",
            "--out",
            out,
        ]
    )
    assert res.exit_code == 0, res.output
    m = json.loads((tmp_path / "r.metrics.json").read_text())
    assert m["feature_error"]["conv3"] < 0.5  # 30 steps already halve the distance to the features


def test_invert_with_a_mask_file(tmp_path, tiny, make_image):
    src = make_image("in.png", h=32, w=32)
    spatial = np.zeros((16, 16), np.float32)
    spatial[4:12, 4:12] = 1
    np.save(tmp_path / "m.npy", spatial)
    out = tmp_path / "r.png"
    res = _invoke(
        [
            "invert",
            src,
            "--layer",
            "conv3",
            *tiny,
            "--size",
            "32x32",
            "--steps",
            2,
            "--mask",
            f"conv3={tmp_path / 'm.npy'}",
            "-q",
            "--out",
            out,
        ]
    )
    assert res.exit_code == 0, res.output
    np.save(tmp_path / "bad.npy", np.ones((5, 5), np.float32))
    _assert_one_line_error(
        _invoke(
            [
                "invert",
                src,
                "--layer",
                "conv3",
                *tiny,
                "--size",
                "32x32",
                "--steps",
                1,
                "--mask",
                f"conv3={tmp_path / 'bad.npy'}",
                "-q",
                "--out",
                out,
            ]
        ),
        "mask for layer 'conv3' has shape (5, 5)",
    )
    _assert_one_line_error(
        _invoke(
            ["invert", src, "--layer", "conv3", *tiny, "--mask", f"conv3={tmp_path / 'none.npy'}", "-q", "--out", out]
        ),
        "does not exist",
    )


def test_invert_video_frame_by_frame(tmp_path, tiny):
    frames = np.stack([smooth_rgb(32, 32, seed=s) for s in range(3)])
    src = tmp_path / "clip.gif"
    iio.imwrite(src, frames, extension=".gif", duration=100, loop=0)
    out = tmp_path / "recon.gif"
    res = _invoke(["invert", src, "--layer", "conv3", *tiny, "--size", "32x32", "--steps", 3, "-q", "--out", out])
    assert res.exit_code == 0, res.output
    assert iio.imread(out, index=None).shape[0] == 3


def test_prefer_writes_the_preferred_image(tmp_path, tiny):
    out = tmp_path / "pref.png"
    res = _invoke(
        ["prefer", "--layer", "conv3", "--channel", 2, *tiny, "--size", "32x32", "--steps", 4, "-q", "--out", out]
    )
    assert res.exit_code == 0, res.output
    img = iio.imread(out)
    assert img.shape == (32, 32, 3) and img.std() > 0
    out2 = tmp_path / "rf.png"
    res = _invoke(
        [
            "prefer",
            "--layer",
            "conv1",
            "--channel",
            0,
            "--rf-mask",
            *tiny,
            "--size",
            "32x32",
            "--steps",
            3,
            "-q",
            "--out",
            out2,
        ]
    )
    assert res.exit_code == 0, res.output
    a = iio.imread(out2).astype(int)
    changed = (np.abs(a - a[0, 0]) > 1).any(axis=2)  # the corner keeps the model's mean colour
    assert 0 < changed.sum() <= 9  # only the unit's 3x3 receptive field changed


def test_invert_subprocess_on_the_embedded_model(tmp_path):
    import cnnvis.io.images

    out = tmp_path / "r.png"
    p = subprocess.run(
        [
            _exe(),
            "invert",
            cnnvis.io.images.bundled_image_path(),
            "--layer",
            "blocks.1",
            "--steps",
            "3",
            "-q",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    assert iio.imread(out).shape == (224, 224, 3)
    assert "pixel correlation" in p.stdout


def test_invert_says_when_its_default_is_the_generator_and_records_auto(tmp_path):
    import cnnvis.io.images
    from cnnvis.io.manifest import read_manifest

    base = ["invert", cnnvis.io.images.bundled_image_path(), "--layer", "conv_head", "--size", "32x32", "--steps", 2]
    res = _invoke([*base, "--out", tmp_path / "auto.png"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert "through the shipped generator" in res.output and "--prior none" in res.output
    assert read_manifest(str(tmp_path / "auto.png"))["params"]["prior"] == "auto"
    res = _invoke([*base, "--prior", "none", "--out", tmp_path / "none.png"])
    assert res.exit_code == 0 and "generator" not in res.output, res.output


@pytest.mark.parametrize("case", ["shape", "nan", "layer", "unreadable", "channels", "both", "size", "npy"])
def test_invert_bad_input_is_one_line(tmp_path, tiny, make_image, case):
    img = smooth_rgb(32, 32)
    feats = _conv3_features(img)
    f = tmp_path / "f.npz"
    args = ["invert", "--features", f, *tiny, "--size", "32x32", "--steps", 1, "-q", "--out", tmp_path / "o.png"]
    needles = []
    if case == "shape":
        np.savez(f, conv3=feats[:, :4])
        needles = ["(16, 4, 16)", "(16, 16, 16)"]
    elif case == "nan":
        feats[0, 0, 0] = np.nan
        np.savez(f, conv3=feats)
        needles = ["NaN"]
    elif case == "layer":
        np.savez(f, conv33=feats)
        needles = ["unknown layer 'conv33'", "conv3"]
    elif case == "unreadable":
        f.write_bytes(b"not a zip")
        needles = ["cannot read feature file"]
    elif case == "channels":
        np.savez(f, conv3=feats)
        args += ["--channels", "conv3=0,99"]
        needles = ["channel 99"]
    elif case == "both":
        args = ["invert", make_image(), *args[1:]]
        np.savez(f, conv3=feats)
        needles = ["not both"]
    elif case == "size":
        np.savez(f, conv3=feats)
        args[args.index("32x32")] = "3x3"
        needles = ["--size 3x3"]
    elif case == "npy":
        np.save(tmp_path / "f.npy", feats)
        args[2] = tmp_path / "f.npy"
        needles = ["--layer"]
    _assert_one_line_error(_invoke(args), *needles)


def test_prefer_bad_input_is_one_line(tmp_path, tiny):
    base = ["prefer", *tiny, "--size", "32x32", "--steps", 1, "-q", "--out", tmp_path / "p.png"]
    _assert_one_line_error(_invoke(base + ["--layer", "conv3", "--channel", 40]), "channel 40")
    _assert_one_line_error(_invoke(base + ["--layer", "conv9", "--channel", 0]), "unknown layer 'conv9'")
    _assert_one_line_error(_invoke(base + ["--layer", "conv3", "--channel", 0, "--x", 99, "--y", 0]), "x=99")


def test_invert_starts_writes_the_best_start_and_replays_it(tmp_path, tiny, make_image):
    src = make_image("in.png", h=32, w=32)
    out = tmp_path / "best.png"
    res = _invoke(
        ["invert", src, "--layer", "conv3", *tiny, "--size", "32x32", "--steps", 3, "--starts", 3, "-q"]
        + ["--out", out]
    )
    assert res.exit_code == 0, res.output
    assert iio.imread(out).shape == (32, 32, 3)
    from cnnvis.io.manifest import read_manifest

    assert read_manifest(str(out))["params"]["starts"] == 3
    res = _invoke(["replay", str(out), "--check", "--trust-model"])
    assert res.exit_code == 0 and "bit for bit" in res.output, res.output


def test_invert_starts_below_one_is_one_line(tmp_path, tiny, make_image):
    src = make_image("in.png", h=32, w=32)
    res = _invoke(["invert", src, "--layer", "conv3", *tiny, "--starts", 0, "--out", tmp_path / "x.png"])
    _assert_one_line_error(res, "--starts")


def test_an_inversion_recorded_before_starts_replays_with_one(tmp_path, tiny, make_image):
    """conv3 is the tiny network's last layer, where --starts now defaults to several: a manifest from before the
    setting ran one start, and replay must run one."""
    from cnnvis.io.manifest import sidecar_path

    src = make_image("in.png", h=32, w=32)
    out = tmp_path / "old.png"
    args = ["invert", src, "--layer", "conv3", *tiny, "--size", "32x32", "--steps", 3, "--starts", 1, "-q"]
    assert _invoke([*args, "--out", out]).exit_code == 0
    path = sidecar_path(str(out))
    with open(path) as f:
        m = json.load(f)
    del m["params"]["starts"]
    with open(path, "w") as f:
        json.dump(m, f)
    res = _invoke(["replay", str(out), "--check", "--trust-model"])
    assert res.exit_code == 0 and "bit for bit" in res.output, res.output
