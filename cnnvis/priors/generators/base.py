"""What every image generator (a DGN prior) is: a module from a latent code to an image.

A generator maps a latent ``z`` of shape ``(B, *latent_shape)`` to its raw output
``(B, 3, H, W)`` in its own colour space, and :meth:`Generator.to_rgb` maps that output to RGB
in [0, 1] (the pipeline's canvas space). Dosovitskiy & Brox's Caffe generators output BGR on a
0..255 scale minus the ImageNet mean; generators trained by ``cnnvis train-generator`` output
RGB in [0, 1] directly.

``spatial`` generators are fully convolutional: their latent is a feature map
``(C, h, w)`` and one latent cell becomes ``stride`` x ``stride`` output pixels, so the latent
grows with the image. Vector generators (fc6, fc7, fc8) have a fixed output size.
"""

from __future__ import annotations

import torch
from torch import nn


class Generator(nn.Module):
    """Base class. Subclasses set the attributes below in ``__init__`` and define ``forward``.

    Attributes:
        arch: registry name of the architecture (``deepsim-fc6``, ``upconv``, ...).
        latent_shape: per-sample latent shape at the native output size, e.g. ``(4096,)`` or
            ``(256, 6, 6)``.
        spatial: True when the latent is a feature map and the network is fully convolutional.
        stride: output pixels per latent cell (spatial generators; 1 otherwise).
        output_size: (H, W) of the output for ``latent_shape``.
        bgr_mean: ``None`` for RGB output in [0, 1]; else the per-channel BGR mean (0..255
            units) that Caffe-style output is relative to.
    """

    arch: str = ""
    latent_shape: tuple[int, ...] = ()
    spatial: bool = False
    stride: int = 1
    output_size: tuple[int, int] = (0, 0)
    bgr_mean: tuple[float, float, float] | None = None

    def config(self) -> dict:
        """The constructor's keyword arguments, so that ``type(self)(**self.config())`` rebuilds it."""
        raise NotImplementedError

    def output_hw(self, h: int = 0, w: int = 0) -> tuple[int, int]:
        """Output (H, W) of a spatial latent of size (h, w); subclasses whose output is not
        exactly ``stride`` times the latent (DeePSiM's pool5: ``64 (h - 2)``) override it."""
        return h * self.stride, w * self.stride

    def latent_hw(self, size: tuple[int, int]) -> tuple[int, int]:
        """The smallest spatial latent (h, w) whose output covers ``size`` (H, W) pixels."""
        out = []
        for i, side in enumerate(size):
            n = 1
            while self.output_hw(n, n)[i] < side:
                n += 1
            out.append(n)
        return out[0], out[1]

    def to_rgb(self, raw: torch.Tensor) -> torch.Tensor:
        """Map raw output (B, 3, H, W) to RGB in [0, 1] (not clamped: callers decide)."""
        if self.bgr_mean is None:
            return raw
        mean = torch.tensor(self.bgr_mean, dtype=raw.dtype, device=raw.device).view(1, 3, 1, 1)
        return (raw + mean).flip(1) / 255.0

    def from_rgb(self, rgb: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`to_rgb`: RGB in [0, 1] (B, 3, H, W) to the raw output space."""
        if self.bgr_mean is None:
            return rgb
        mean = torch.tensor(self.bgr_mean, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
        return rgb.flip(1) * 255.0 - mean

    def image(self, z: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] (B, 3, H, W), differentiable with respect to ``z`` (B, *latent_shape)."""
        return self.to_rgb(self(z)).clamp(0, 1)
