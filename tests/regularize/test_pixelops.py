"""icnn's in-place pixel operations."""

from __future__ import annotations

import pytest
import torch

from cnnvis.regularize import pixelops

MEAN = (0.5, 0.5, 0.5)


def test_decay_pulls_toward_the_mean(device):
    x = torch.full((1, 3, 4, 4), 0.9, device=device)
    pixelops.decay_(x, 0.25, MEAN)
    assert torch.allclose(x, torch.full_like(x, 0.8))


def test_clip_extreme_clips_the_tails(device):
    x = torch.linspace(0, 1, 3 * 10 * 10, device=device).view(1, 3, 10, 10).clone()
    pixelops.clip_extreme_(x, 10)
    assert float(x.min()) == pytest.approx(0.05, abs=0.01) and float(x.max()) == pytest.approx(0.95, abs=0.01)


def test_small_norm_pixels_are_reset(device):
    x = torch.full((1, 3, 2, 2), 0.5, device=device)
    x[..., 0, 0] = 1.0  # far from the mean
    x[..., 1, 1] = 0.55  # close to it
    x[..., 0, 1] = 0.9
    x[..., 1, 0] = 0.1
    pixelops.clip_small_norm_(x, 30, MEAN)
    assert torch.allclose(x[..., 1, 1], torch.full((1, 3), 0.5, device=device))
    assert torch.allclose(x[..., 0, 0], torch.ones(1, 3, device=device))


def test_small_contribution_pixels_are_reset(device):
    x = torch.full((1, 3, 2, 2), 0.9, device=device)
    g = torch.zeros(1, 3, 2, 2, device=device)
    g[..., 0, 0] = 1.0
    pixelops.clip_small_contrib_(x, g, 50, MEAN)
    assert float(x[0, 0, 0, 0]) == pytest.approx(0.9)
    assert float(x[0, 0, 1, 1]) == pytest.approx(0.5)
