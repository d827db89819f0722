"""A small fully convolutional generator that inverts a spatial layer of any model.

Architecture after Dosovitskiy & Brox (2016, "Generating Images with Perceptual Similarity
Metrics based on Deep Networks"): a 1x1 then a 3x3 convolution on the feature map, then one
stage per factor of two of the layer's stride: a 4x4 stride-2 transposed convolution
("deconvolution") and a 3x3 convolution, each followed by LeakyReLU(0.3) as in DeePSiM, and a
final 3x3 convolution to RGB. With ``upsample="bilinear"`` (or ``"nearest"``) each stage
instead doubles the map by resizing, followed by the 3x3 convolution (Odena et al. 2016,
"Deconvolution and Checkerboard Artifacts", Distill): a transposed convolution's output phases
use different kernel taps, a period-2 checkerboard that stacks over the stages into a grid at
the layer's stride; resize-convolutions have no phases. Neither removes the blocks of the
stride by itself: each block is still drawn from its own latent cell, and 4000-step generators
drew unseen photos with grid ratios of 1.4 (transposed), 1.8 (nearest) and 3.9-4.7 (bilinear).
What removes them is the trainer's seam term (cnnvis/priors/train.py); with it the transposed
form learns fastest and draws no grid, so it stays the default (cnnvis/data/README.md).
Unlike DeePSiM's fc generators it has no fully connected layer, so it takes a feature map of
any size: a (C, h, w) latent gives a (3, h * stride, w * stride) image, which is what lets the
DGN prior grow with the canvas.

Widths halve at each stage from ``width`` down to ``min_width``; the default (128 -> 16 over
five stages, 1280 input channels) has about 1 M parameters, 2 MB in float16.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cnnvis.defaults import UPSAMPLING
from cnnvis.priors.generators.base import Generator

SLOPE = 0.3  # DeePSiM's LeakyReLU negative slope


def _act() -> nn.LeakyReLU:
    return nn.LeakyReLU(SLOPE)


class UpconvGenerator(Generator):
    """Latent (B, in_channels, h, w) -> RGB (B, 3, h * stride, w * stride), nominally in [0, 1].

    Args:
        in_channels: channels of the inverted layer.
        stride: the layer's stride in pixels (a power of two, 2..64).
        latent_hw: (h, w) of the layer at the model's input size; sets ``output_size``.
        width: channels after the input convolutions; halved after each upsampling stage.
        min_width: the smallest stage width.
        upsample: ``transposed`` (4x4 stride-2 transposed convolutions, DeePSiM's), or
            ``bilinear`` / ``nearest`` (resize x2, then a 3x3 convolution: no checkerboard).
    """

    arch = "upconv"
    spatial = True

    def __init__(
        self,
        in_channels: int,
        stride: int,
        latent_hw: tuple[int, int] = (7, 7),
        width: int = 128,
        min_width: int = 16,
        upsample: str = "transposed",
    ):
        super().__init__()
        if upsample not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {', '.join(UPSAMPLING)}, got {upsample!r}")
        self.upsample = upsample
        stages = int(round(math.log2(stride)))
        if stride < 2 or 2**stages != stride or stages > 6:
            raise ValueError(f"stride must be a power of two from 2 to 64, got {stride}")
        self.in_channels, self.width, self.min_width = in_channels, width, min_width
        self.stride = stride
        self.latent_shape = (in_channels, int(latent_hw[0]), int(latent_hw[1]))
        self.output_size = (self.latent_shape[1] * stride, self.latent_shape[2] * stride)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 1),
            _act(),
            nn.Conv2d(width, width, 3, padding=1),
            _act(),
        ]
        c = width
        for i in range(stages):
            out = max(min_width, width >> i)  # the first stage keeps the full width
            if upsample != "transposed":
                resize = nn.Upsample(
                    scale_factor=2, mode=upsample, **({"align_corners": False} if upsample == "bilinear" else {})
                )
                up: list[nn.Module] = [resize, nn.Conv2d(c, out, 3, padding=1)]
            else:
                up = [nn.ConvTranspose2d(c, out, 4, stride=2, padding=1)]
            layers += [*up, _act(), nn.Conv2d(out, out, 3, padding=1), _act()]
            c = out
        layers.append(nn.Conv2d(c, 3, 3, padding=1))
        self.net = nn.Sequential(*layers)
        with torch.no_grad():
            self.net[-1].bias.fill_(0.5)  # start at mid-grey: output is RGB in [0, 1]

    def config(self) -> dict:
        return {
            "in_channels": self.in_channels,
            "stride": self.stride,
            "latent_hw": list(self.latent_shape[1:]),
            "width": self.width,
            "min_width": self.min_width,
            "upsample": self.upsample,
        }

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 4 or z.shape[1] != self.in_channels:
            raise ValueError(f"expected a latent (B, {self.in_channels}, h, w), got {tuple(z.shape)}")
        return self.net(z)
