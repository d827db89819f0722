"""Choosing one of N starts of a picture without its pixels: the consensus of their layouts.

An inversion from the network's last layers can match the features with different layouts, and the
lowest feature error does not single out the right one (bench/RESULTS.md, "conv_head: the seed decides
as much as the photo"). Independent starts that agree with each other are likelier to hold the layout
the features imply than one that stands alone, so the medoid of the starts, by the correlation of their
coarse luminance, is a choice that sees layout (bench/start_choice.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LAYOUT_SIDE = 28  # px: the side at which layouts are compared (a 224 px image's 8 px blocks)


def layout_agreement(images: torch.Tensor, side: int = LAYOUT_SIDE) -> torch.Tensor:
    """(N, N) correlations of the images' (N, C, H, W; RGB in [0, 1]) luminance, area-resized to
    ``side`` px on the long side: 1 on the diagonal, in [-1, 1] elsewhere."""
    lum = images[:, :3].float().mean(1, keepdim=True)
    h, w = lum.shape[-2:]
    k = side / max(h, w)
    small = F.interpolate(lum, size=(max(1, round(h * k)), max(1, round(w * k))), mode="area").flatten(1)
    small = small - small.mean(1, keepdim=True)
    small = small / (small.norm(dim=1, keepdim=True) + 1e-12)
    return small @ small.T


def consensus_start(images: torch.Tensor) -> int:
    """Index of the start (of ``images``, N >= 1) whose layout agrees best, on average, with the
    others' (the medoid); 0 for a single start."""
    n = images.shape[0]
    if n < 2:
        return 0
    agree = layout_agreement(images)
    return int(torch.argmax((agree.sum(1) - agree.diagonal()) / (n - 1)))
