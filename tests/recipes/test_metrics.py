"""Image metrics: the grid ratio finds blocks of a stride, not a photo's own texture."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from cnnvis.recipes.metrics import grid_ratio

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from photos import PACKAGE_VALIDATION, TUNING, photo  # noqa: E402  (bench/photos.py)


def _photos(names) -> torch.Tensor:
    return torch.stack([torch.from_numpy(photo(n, 224)).permute(2, 0, 1) for n in names]).mul(255).round().div(255)


def test_eight_photos_pooled_show_no_grid_and_blocks_of_the_stride_do():
    x = _photos(TUNING + PACKAGE_VALIDATION)
    gx, gy = grid_ratio(x, 16)
    assert gx < 1.15 and gy < 1.15
    # a blocky copy: every 16x16 block of each photo shifted by its own small offset (a generator's seams)
    offsets = torch.rand(8, 3, 14, 14, generator=torch.Generator().manual_seed(0)) * 0.2
    bx, by = grid_ratio((x + torch.nn.functional.interpolate(offsets, scale_factor=16, mode="nearest")).clamp(0, 1), 16)
    assert bx > 1.5 and by > 1.5
    # seams along x only
    cols = x.clone()
    cols[..., ::16] = (cols[..., ::16] + 0.05).clamp(0, 1)
    cx, cy = grid_ratio(cols, 16)
    assert cx > 1.5 and cy < 1.15


def test_one_image_is_one_image():
    x = _photos(["coffee"])
    assert grid_ratio(x) == grid_ratio(torch.cat([x, x]))


def test_lab_error_is_zero_for_the_same_colours_and_grows_as_they_wash_out():
    from cnnvis.recipes.metrics import lab_error

    x = _photos(TUNING[:2])
    grey = x.mean(1, keepdim=True).expand_as(x)
    washed = [lab_error(x, x + t * (grey - x)) for t in (0.0, 0.3, 0.6, 1.0)]
    assert washed[0] < 1e-3 and washed == sorted(washed) and washed[-1] > 5
    black, white = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)
    assert abs(lab_error(black, white) - 100) < 0.5
