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


# The periods of a generator's stride-2 upsampling stages: transposed convolutions leave a lattice
# at each (Odena et al. 2016, "Deconvolution and Checkerboard Artifacts", Distill).
LATTICE_PERIODS = (2, 4, 8, 16)
_NEIGHBOURS = 3  # frequency bins each side that a peak is compared with


def lattice_profile(x: torch.Tensor, periods=LATTICE_PERIODS) -> torch.Tensor:
    """(B, 2, len(periods)) power of images ``x`` (B, C, H, W) at 1/p cycles per pixel over the
    mean power of the ``_NEIGHBOURS`` frequency bins each side of it (axis 0: along rows, i.e. a
    lattice of columns; 1: along columns), the periodogram of the grey image averaged over the
    other axis. A photo scores about 1 at every period; a lattice of period p raises it.
    Differentiable. A period that does not divide the side is read at the nearest bin."""
    grey = x.mean(1)
    out = []
    for dim in (2, 1):
        n = grey.shape[dim]
        rows = grey - grey.mean(dim, keepdim=True)
        power = torch.fft.rfft(rows, dim=dim).abs().pow(2).mean(3 - dim)  # (B, n // 2 + 1)
        ratios = []
        for p in periods:
            k = min(round(n / p), power.shape[1] - 1)
            near = [j for j in range(k - _NEIGHBOURS, k + _NEIGHBOURS + 1) if j != k and 0 < j < power.shape[1]]
            ratios.append(power[:, k] / power[:, near].mean(1).clamp_min(1e-20))
        out.append(torch.stack(ratios, 1))
    return torch.stack(out, 1)
