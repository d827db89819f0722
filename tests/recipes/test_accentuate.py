"""Feature accentuation: a unit raised in a photo, held near the photo's activations."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, invoke

from cnnvis.objectives.activation import Channel
from cnnvis.objectives.anchor import Anchor
from cnnvis.recipes.accentuate import AccentuateOptions, accentuate_render, anchor_balance


@pytest.fixture(scope="module")
def photo():
    import cv2
    import skimage.data

    return cv2.resize(skimage.data.coffee(), (96, 72), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def test_balance_makes_the_anchor_pull_as_hard_as_the_unit(lite0, photo):
    ref = torch.from_numpy(photo).permute(2, 0, 1)[None]
    balance = anchor_balance(lite0, Channel("blocks.4", 5), Anchor("blocks.4", ref), ref)
    assert np.isfinite(balance) and balance > 0


def _render(lite0, photo, weight):
    opts = AccentuateOptions(image="x", layer="blocks.4", channel=[5], anchor_weight=weight)
    r = accentuate_render(opts, lite0, "cpu", {"steps": 6, "seed": 0}, photo)
    return r, r.run()


def test_the_anchor_keeps_the_photo_and_the_unit_rises(lite0, photo):
    r_free, free = _render(lite0, photo, 0.0)
    r_held, held = _render(lite0, photo, 4.0)
    ref = torch.from_numpy(photo).permute(2, 0, 1)[None]
    assert free.shape == held.shape == (1, 3, 72, 96)  # the photo's own size
    assert float((held - ref).abs().mean()) < float((free - ref).abs().mean())
    with lite0.capture(["blocks.4"]) as cap, torch.no_grad():
        before = float(cap(lite0.normalize(ref))["blocks.4"][0, 5].mean())
        after = float(cap(lite0.normalize(held.clamp(0, 1)))["blocks.4"][0, 5].mean())
    assert after > before


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--layer", "blocks.4", "--channel", 5], "accentuate starts from a photo"),
        (["PHOTO", "--channel", 5], "name the unit to accentuate"),
        (["PHOTO", "--layer", "blocks.4", "--channel", "5,6"], "accentuate one channel at a time"),
        (["PHOTO", "--layer", "blocks.4", "--channel", 500], "channel 500 is out of range"),
        (["nothere.png", "--layer", "blocks.4", "--channel", 5], "image not found"),
    ],
)
def test_bad_input_is_one_line(args, words, tmp_path, photo):
    path = tmp_path / "p.png"
    iio.imwrite(path, (photo * 255).astype(np.uint8))
    args = [str(path) if a == "PHOTO" else a for a in args]
    assert_one_line_error(invoke(["accentuate", *args, "-o", tmp_path / "out.png"]), words)


def test_cli_accentuates_at_the_photos_size(tmp_path, photo):
    path = tmp_path / "p.png"
    iio.imwrite(path, (photo * 255).astype(np.uint8))
    res = invoke(
        ["accentuate", path, "--layer", "blocks.4", "--channel", 5, "--steps", 2, "-q", "-o", tmp_path / "a.png"]
    )
    assert res.exit_code == 0, res.output
    assert iio.imread(tmp_path / "a.png").shape == (72, 96, 3)


def test_prefer_tiles_a_large_canvas_at_the_model_input(lite0):
    """Up to PREFER_ONE_TILE_MAX a preferred image is one tile; beyond it, tiles of the model's input
    size keep the memory bounded (one 2048 tile of Lite0 held 7.2 GB)."""
    from cnnvis.defaults import PREFER_ONE_TILE_MAX
    from cnnvis.recipes.recon import objective_tile

    assert objective_tile(lite0, (300, PREFER_ONE_TILE_MAX)) == PREFER_ONE_TILE_MAX
    assert objective_tile(lite0, (300, PREFER_ONE_TILE_MAX + 1)) == lite0.input_size
    opts = AccentuateOptions(image="x", layer="blocks.4", channel=[5], size="600x1100")
    big = np.zeros((600, 1100, 3), np.float32) + 0.5
    assert accentuate_render(opts, lite0, "cpu", {"steps": 1}, big).tile == lite0.input_size
