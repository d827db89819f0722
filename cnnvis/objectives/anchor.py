"""The anchor of feature accentuation: stay near a photo's own activations at one layer.

Feature accentuation (Hamblin, Fel et al. 2024, "Feature Accentuation: Revealing 'What' Features
Respond to in Natural Images"; faccent's ``l2_compare``) maximizes a unit while the image is
held near the photo it starts from, measured in a network layer rather than in pixels: the score
is minus the mean over positions of the L2 distance (over channels) between the image's
activations and the photo's, under the same tile, window and transforms (the photo rides along
with the tiles as a reference, like an inversion's).
"""

from __future__ import annotations

import torch

from cnnvis.objectives.base import Capture, Objective


class Anchor(Objective):
    """``-mean_positions ||f(x) - f(photo)||_2`` at ``layer``, per tile: (B,), <= 0.

    Args:
        layer: the anchor layer.
        reference: the photo (1, 3, H, W) in [0, 1].
    """

    def __init__(self, layer: str, reference: torch.Tensor):
        self.layer, self.reference = layer, reference
        self.layers = (layer,)

    def score(self, cap: Capture) -> torch.Tensor:
        a = cap.feats[self.layer]
        target = cap.targets_of(self.reference)[self.layer]
        diff = a - target
        # a small floor keeps the gradient of the norm finite where the image equals the photo
        dist = (diff.pow(2).sum(1) + 1e-12).sqrt()
        return -dist.flatten(1).mean(1) if dist.dim() > 1 else -dist

    def __repr__(self) -> str:
        return f"Anchor({self.layer!r})"
