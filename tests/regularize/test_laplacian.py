"""Laplacian-pyramid gradient normalization (Google's lap_normalize)."""

from __future__ import annotations

import torch

from cnnvis.regularize.laplacian import lap_merge, lap_normalize, lap_split


def test_one_level_is_division_by_the_std_per_image(device):
    g = torch.randn(2, 3, 32, 40, device=device) * torch.tensor([1.0, 10.0], device=device).view(2, 1, 1, 1)
    out = lap_normalize(g, 1)
    for i in range(2):
        assert torch.allclose(out[i], g[i] / g[i].std(), atol=1e-5)


def test_the_pyramid_reconstructs_exactly_and_every_level_gets_unit_std(device):
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(48.0), indexing="ij")
    smooth = 100 * torch.exp(-((xx - 24) ** 2 + (yy - 32) ** 2) / 200)
    g = (
        (smooth + 0.01 * torch.randn(64, 48, generator=torch.Generator().manual_seed(0)))[None, None]
        .repeat(1, 3, 1, 1)
        .to(device)
    )
    bands = lap_split(g, 4)
    assert len(bands) == 4 and bands[-1].shape[-2:] == (8, 6)
    assert torch.allclose(lap_merge(bands), g, atol=1e-4)
    stds = [float(b.std()) for b in bands]
    assert stds[-1] > 10 * stds[0]  # the fine band is weak before normalization
    out = lap_normalize(g, 4)
    assert torch.allclose(out, lap_merge([b / b.std() for b in bands]), atol=1e-5)
    # ... and carries a real share of the normalized gradient after it
    assert float(bands[0].div(bands[0].std()).pow(2).sum() / out.pow(2).sum()) > 0.05


def test_odd_sizes_keep_their_shape(device):
    g = torch.randn(1, 3, 37, 53, device=device)
    assert lap_normalize(g, 5).shape == g.shape
    assert torch.isfinite(lap_normalize(torch.zeros(1, 3, 16, 16, device=device), 3)).all()
