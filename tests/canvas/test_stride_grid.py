"""The per-phase edge energy that both the grid ratio and the generator's seam term read."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnvis.canvas.stride_grid import phase_profile


def test_noise_is_flat_and_blocks_peak_at_their_seams():
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(4, 3, 96, 96, generator=g)
    flat = phase_profile(noise, 8)
    assert flat.shape == (4, 2, 8)
    assert torch.allclose(flat.mean(-1), torch.ones(4, 2))
    assert float((flat - 1).abs().max()) < 0.2
    blocks = F.interpolate(torch.rand(4, 3, 12, 12, generator=g), scale_factor=8, mode="nearest")
    peaked = phase_profile(blocks, 8)
    # a step between pixel 8k - 1 and 8k makes the second difference at positions 8k - 1 and 8k
    for axis in range(2):
        top = set(peaked[:, axis].mean(0).topk(2).indices.tolist())
        assert top == {0, 7}, top
    assert float(peaked.max()) > 3


def test_the_profile_has_a_gradient_that_flattens_it():
    g = torch.Generator().manual_seed(1)
    x = (
        F.interpolate(torch.rand(2, 3, 6, 6, generator=g), scale_factor=8, mode="nearest")
        + 0.1 * torch.rand(2, 3, 48, 48, generator=g)
    ).requires_grad_()
    loss = (phase_profile(x, 8) - 1).pow(2).mean()
    loss.backward()
    with torch.no_grad():
        stepped = x - 0.5 * x.grad / x.grad.abs().max()
    assert float((phase_profile(stepped, 8) - 1).pow(2).mean()) < float(loss.detach())
