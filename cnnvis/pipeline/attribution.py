"""Transparency from attribution: where the objective's gradient was, the image is opaque.

MACO (Fel et al. 2023) and feature accentuation (Hamblin et al. 2024) accumulate ``|d objective
/ d image|`` over the optimization and show it as the image's transparency: the pixels the unit
reads stay, the rest fades. Here the accumulation is the objective's tiled canvas gradient
(before the regularizers, any normalization and the image mask), summed over colour channels,
for any parameterization; ``--alpha-from-grad`` writes it as the alpha of an RGBA PNG.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The alpha is the accumulated attribution over this percentile of its values per image, clamped
# to [0, 1]: one bright tile corner does not make the rest transparent.
ALPHA_PERCENTILE = 99.0


def accumulate(total: torch.Tensor | None, grad: torch.Tensor) -> torch.Tensor:
    """``total`` (N, 1, h, w) or None, plus ``|grad|`` (N, C, H, W) summed over channels; an
    earlier size's total is resized (bilinear) to this one first."""
    a = grad.detach().abs().sum(1, keepdim=True)
    if total is None:
        return a.clone()
    if total.shape != a.shape:
        total = F.interpolate(total, size=a.shape[-2:], mode="bilinear", align_corners=False)
    return total.add_(a)


def attribution_alpha(total: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The alpha (N, 1, H, W) in [0, 1] of an accumulated attribution ``total`` at ``size``."""
    if tuple(total.shape[-2:]) != tuple(size):
        total = F.interpolate(total, size=size, mode="bilinear", align_corners=False)
    flat = total.flatten(1).float()
    top = torch.quantile(flat, ALPHA_PERCENTILE / 100, dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
    return (total / top).clamp(0, 1)


def with_alpha_from(canvas: torch.Tensor, total: torch.Tensor | None) -> torch.Tensor:
    """``canvas`` (N, 3 or 4, H, W) as RGBA whose alpha is the attribution (RGB kept)."""
    if total is None:
        return canvas
    return torch.cat([canvas[:, :3], attribution_alpha(total, canvas.shape[-2:]).to(canvas)], 1)
