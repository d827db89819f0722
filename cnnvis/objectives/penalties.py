"""Penalties on the image as objectives, to subtract as in lucid: ``objective - 0.05 * L1()``.

Each is computed on the tiles (RGB in [0, 1], before normalization); where the tiles overlap,
the pipeline blends their gradients with weights that sum to one, so a per-pixel penalty (L1,
blur) has the gradient of the whole-canvas penalty.
"""

from __future__ import annotations

import kornia
import torch

from cnnvis.errors import InputError
from cnnvis.objectives.base import Capture, Objective


class L1(Objective):
    """``sum |x - constant|`` over each tile's pixels (lucid ``L1`` on the input)."""

    def __init__(self, constant: float = 0.0):
        self.constant = float(constant)

    def score(self, cap: Capture) -> torch.Tensor:
        return (cap.image - self.constant).abs().flatten(1).sum(1)

    def __repr__(self) -> str:
        return f"L1({self.constant:g})"


class L2(Objective):
    """``sqrt(eps + sum (x - constant)^2)`` of each tile (lucid ``L2`` on the input)."""

    def __init__(self, constant: float = 0.0, epsilon: float = 1e-6):
        self.constant, self.epsilon = float(constant), float(epsilon)

    def score(self, cap: Capture) -> torch.Tensor:
        return (self.epsilon + (cap.image - self.constant).pow(2).flatten(1).sum(1)).sqrt()

    def __repr__(self) -> str:
        return f"L2({self.constant:g})"


class Blur(Objective):
    """``0.5 * sum (x - blur(x))^2`` with the blurred image held fixed (lucid
    ``blur_input_each_step``): subtracting it pulls each step toward its own blur."""

    def __init__(self, sigma: float = 1.0):
        if not sigma > 0:
            raise InputError(f"blur sigma must be > 0 pixels, got {sigma}; e.g. blur:1")
        self.sigma = float(sigma)

    def score(self, cap: Capture) -> torch.Tensor:
        k = 2 * int(round(3 * self.sigma)) + 1
        with torch.no_grad():
            blurred = kornia.filters.gaussian_blur2d(cap.image, (k, k), (self.sigma, self.sigma), border_type="reflect")
        return 0.5 * (cap.image - blurred).pow(2).flatten(1).sum(1)

    def __repr__(self) -> str:
        return f"Blur({self.sigma:g})"
