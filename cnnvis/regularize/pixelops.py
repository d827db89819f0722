"""In-place pixel operations between steps (icnn's clipping, after Yosinski et al. 2015).

Every function edits a canvas (1, 3, H, W) in place, relative to the model's mean colour
``mean`` (3 values): "reset" means set to the mean colour, the neutral grey of the network.
Percentiles are over the whole canvas; above 16M values they are estimated from an even
stride of 16M samples (``torch.quantile``'s limit), which at 8K changes them by far less
than a percentile point.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

_MAX_QUANTILE = 1 << 24


def _quantile(v: torch.Tensor, q: float) -> float:
    v = v.flatten()
    if v.numel() > _MAX_QUANTILE:
        v = v[:: -(-v.numel() // _MAX_QUANTILE)]
    return float(torch.quantile(v.float(), q))


def _mean(canvas: torch.Tensor, mean: Sequence[float]) -> torch.Tensor:
    return torch.tensor(mean, dtype=canvas.dtype, device=canvas.device).view(1, 3, 1, 1)


@torch.no_grad()
def decay_(canvas: torch.Tensor, amount: float, mean: Sequence[float]) -> None:
    """Pull every pixel toward the mean colour by ``amount`` in [0, 1) (icnn's ``decay``)."""
    if amount > 0:
        m = _mean(canvas, mean)
        canvas.sub_(m).mul_(1 - amount).add_(m)


@torch.no_grad()
def clip_extreme_(canvas: torch.Tensor, pct: float) -> None:
    """Clip values outside the [pct/2, 100 - pct/2] percentiles (icnn's ``clip_extreme_value``)."""
    if pct > 0:
        lo, hi = _quantile(canvas, pct / 200), _quantile(canvas, 1 - pct / 200)
        canvas.clamp_(lo, hi)


@torch.no_grad()
def reset_below_(canvas: torch.Tensor, score: torch.Tensor, pct: float, mean: Sequence[float]) -> None:
    """Reset to the mean colour the pixels whose ``score`` (1, 1, H, W) is at or below its ``pct``
    percentile (at, so that ties, such as the many zero scores of a sparse gradient, are reset)."""
    if pct > 0:
        cut = _quantile(score, pct / 100)
        keep = score > cut
        m = _mean(canvas, mean)
        canvas.copy_(torch.where(keep, canvas, m))


def clip_small_norm_(canvas: torch.Tensor, pct: float, mean: Sequence[float]) -> None:
    """Reset the pixels with the smallest colour norm ``||x - mean||`` (icnn's ``clip_small_norm_pixel``)."""
    if pct > 0:
        reset_below_(canvas, (canvas - _mean(canvas, mean)).norm(dim=1, keepdim=True), pct, mean)


def clip_small_contrib_(canvas: torch.Tensor, grad: torch.Tensor, pct: float, mean: Sequence[float]) -> None:
    """Reset the pixels contributing least to the objective, ``sum_c |(x - mean) * g|``
    (icnn's ``clip_small_contribution_pixel``; ``grad`` (1, 3, H, W) is the last step's)."""
    if pct > 0:
        contrib = ((canvas - _mean(canvas, mean)) * grad).abs().sum(1, keepdim=True)
        reset_below_(canvas, contrib, pct, mean)
