"""Objectives over the whole batch of N images (lucid's ``diversity`` and ``alignment``).

Both compare the N images' tiles over the same window, so the tiles of one window must share a
forward pass: the pipeline orders tiles window by window, image by image, and ``batch_size``
(tiles per pass) should be a multiple of N (``cnnvis`` sets it so). The batch-level term is split
over the tiles so that the tiles' scores sum to it, and autograd gives every image its share.
"""

from __future__ import annotations

from collections import defaultdict

import torch
import torch.nn.functional as F

from cnnvis.objectives.base import Capture, Objective


def _by_window(cap: Capture) -> dict[tuple[int, int, int, int], list[int]]:
    groups: dict[tuple[int, int, int, int], list[int]] = defaultdict(list)
    for k, w in enumerate(cap.windows):
        groups[(w.y0, w.y1, w.x0, w.x1)].append(k)
    return groups


def gram_cosines(a: torch.Tensor) -> torch.Tensor:
    """(k, k) cosine similarities of the Gram matrices of activations ``a`` (k, C, h, w)."""
    flat = a.flatten(2)  # (k, C, P)
    grams = flat @ flat.transpose(1, 2)  # (k, C, C)
    g = F.normalize(grams.flatten(1), dim=1, eps=1e-10)
    return g @ g.T


class Diversity(Objective):
    """Minus the mean pairwise cosine similarity of the images' Gram matrices at ``layer``
    (lucid ``diversity``; Olah et al. 2017): N images of one objective that differ in style.
    Use it as ``objective + w * Diversity(layer)``."""

    def __init__(self, layer: str):
        self.layer = layer
        self.layers = (layer,)

    def score(self, cap: Capture) -> torch.Tensor:
        a = cap.feats[self.layer]
        out = torch.zeros(a.shape[0], dtype=a.dtype, device=a.device)
        for idx in _by_window(cap).values():
            if len(idx) < 2:
                continue
            sims = gram_cosines(a[idx])
            off = sims.sum(1) - sims.diagonal()  # similarity of each image to the others
            out = out.index_put((torch.tensor(idx, device=a.device),), -off / len(idx))
        return out

    def __repr__(self) -> str:
        return f"Diversity({self.layer!r})"


class Alignment(Objective):
    """Minus the squared activation difference between neighbouring images of the batch (image i
    and i+d for d = 1..4, weighted by ``decay_ratio ** -d``; lucid ``alignment``): the frames of
    an interpolation line up instead of drifting."""

    def __init__(self, layer: str, decay_ratio: float = 2.0, reach: int = 4):
        self.layer, self.decay_ratio, self.reach = layer, float(decay_ratio), int(reach)
        self.layers = (layer,)

    def score(self, cap: Capture) -> torch.Tensor:
        a = cap.feats[self.layer]
        items = cap.item_index().tolist()
        out = torch.zeros(a.shape[0], dtype=a.dtype, device=a.device)
        for idx in _by_window(cap).values():
            where = {items[k]: k for k in idx}
            for i, ki in where.items():
                for d in range(1, self.reach + 1):
                    kj = where.get(i + d)
                    if kj is None:
                        continue
                    pen = (a[ki] - a[kj]).pow(2).mean() / self.decay_ratio**d
                    # half the pair's penalty to each of its two tiles
                    out = out + F.one_hot(torch.tensor([ki, kj], device=a.device), a.shape[0]).sum(0).to(a) * (-pen / 2)
        return out

    def __repr__(self) -> str:
        return f"Alignment({self.layer!r}, decay_ratio={self.decay_ratio:g})"
