"""How strongly images show a grid at a network's stride: second-difference energy per phase.

A strided network (or a generator that draws one block per latent cell) leaves seams every
``stride`` pixels. Across each pixel column (row) the energy of the second difference
``x[i+1] - 2 x[i] + x[i-1]`` is averaged per phase ``i mod stride`` and divided by its mean over
the phases: a flat profile (all ones) has no grid; a seam every ``stride`` pixels raises one
phase. :func:`cnnvis.recipes.metrics.grid_ratio` reads the profile as a figure and the
generator trainer's ``grid`` term (cnnvis/priors/train.py) flattens it; both use this one
definition.
"""

from __future__ import annotations

import torch


def phase_profile(x: torch.Tensor, stride: int) -> torch.Tensor:
    """(B, 2, stride) relative second-difference energy per phase of images ``x`` (B, C, H, W)
    (any range; axis 0 = across columns, 1 = across rows). Each row has mean 1. Differentiable."""
    profiles = []
    for dim in (3, 2):
        n = x.shape[dim]
        d2 = x.narrow(dim, 2, n - 2) - 2 * x.narrow(dim, 1, n - 2) + x.narrow(dim, 0, n - 2)
        energy = d2.pow(2).mean(dim=[d for d in (1, 2, 3) if d != dim])  # (B, n - 2): per position
        phase = torch.arange(1, n - 1, device=x.device) % stride
        onehot = torch.nn.functional.one_hot(phase, stride).to(energy.dtype)  # (n - 2, stride)
        per_phase = (energy @ onehot) / onehot.sum(0).clamp_min(1)
        profiles.append(per_phase / per_phase.mean(1, keepdim=True).clamp_min(1e-20))
    return torch.stack(profiles, 1)
