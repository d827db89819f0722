"""Transformation robustness applied to tiles before the network (differentiable)."""

from __future__ import annotations

import torch


def jitter_roll(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Roll the tile batch (B, C, h, w) by a random (dy, dx) in [-max_shift, max_shift] pixels.

    Google's deepdream rolls the image by a random offset every step so that the network
    never sees the same pixel grid twice; ``torch.roll`` is differentiable, so the gradient is
    rolled back exactly. ``max_shift = 0`` returns ``x`` unchanged.
    """
    if max_shift <= 0:
        return x
    dy, dx = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=gen))
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
