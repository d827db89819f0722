"""A low-resolution tensor, upsampled bilinearly: lucid's ``lowres_tensor``
(``lucid.optvis.param.lowres``; Mordvintsev et al. 2018, "Differentiable Image
Parameterizations", Distill).

The optimizer changes a tensor (N, C, ceil(H / F), ceil(W / F)), F = ``cfg.lowres_factor``; the
image (N, C, H, W) is that tensor upsampled bilinearly (half-pixel centres). The image has no
detail finer than about F pixels, a strong smoothness prior with F^2 times fewer parameters.
Values are in pixel units, [0, 1], as for ``pixel`` (``--decorrelate``: in the decorrelated colour
space of :mod:`cnnvis.params.color`); with ``cfg.alpha`` C = 4 and alpha is kept in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnvis.canvas.sizes import Size, resize
from cnnvis.params.base import Param, ParamContext, StepInfo, register
from cnnvis.params.color import from_rgb, to_rgb
from cnnvis.params.pixel import DECORRELATED_BUFFERS, start_canvas


def low_size(size: Size, factor: int) -> Size:
    """(ceil(H / factor), ceil(W / factor)): the optimized tensor's (h, w) for images of ``size``."""
    return -(-size[0] // factor), -(-size[1] // factor)


@register("lowres")
class LowresParam(Param):
    """The tensor ``low`` (N, C, h, w) upsampled bilinearly to (N, C, H, W). Between sizes ``low``
    is resized to the new size's (h, w) and its optimizer starts afresh (its state had the old
    shape), as the Fourier image's does."""

    # cnnvis prefer: the learning rate in the tensor's own units (bench/params.py)
    tuned = {"prefer": dict(lr=0.05)}

    def __init__(self, ctx: ParamContext, size: Size, low: torch.Tensor):
        self.ctx, self.size = ctx, tuple(size)
        self.low = low.requires_grad_(True)
        self.optimizer = ctx.optimizer([self.low])

    @classmethod
    def canvas_buffers(cls, cfg) -> float:
        # counted as the decorrelated pixel canvas's (an upper bound: the colour map runs at the
        # low resolution)
        return DECORRELATED_BUFFERS if cfg.decorrelate else 0

    @classmethod
    def create(cls, ctx: ParamContext, size: Size, start: torch.Tensor | None) -> LowresParam:
        low = start_canvas(ctx, low_size(size, ctx.cfg.lowres_factor), start)  # noise drawn at the low resolution
        return cls(ctx, size, from_rgb(low, ctx.mean) if ctx.cfg.decorrelate else low)

    def _rgb(self, low: torch.Tensor) -> torch.Tensor:
        return to_rgb(low, self.ctx.mean) if self.ctx.cfg.decorrelate else low

    def images(self) -> torch.Tensor:
        # colour map first: it is per pixel and linear, so it commutes with the upsampling
        return F.interpolate(self._rgb(self.low), size=self.size, mode="bilinear", align_corners=False)

    def parameters(self) -> list[torch.Tensor]:
        return [self.low]

    @torch.no_grad()
    def _project(self) -> None:
        """Alpha into [0, 1]; with ``clamp_pixels`` the colours too (bilinear upsampling is a
        convex combination, so the image is then in range)."""
        clamp, alpha = self.ctx.cfg.clamp_pixels, self.low.shape[1] == 4
        if not (clamp or alpha):
            return
        x = self._rgb(self.low)
        if clamp:
            x[:, :3].clamp_(0, 1)
        if alpha:
            x[:, 3:].clamp_(0, 1)
        self.low.copy_(from_rgb(x, self.ctx.mean) if self.ctx.cfg.decorrelate else x)

    def prepare_evaluation(self) -> None:
        if self.ctx.cfg.clamp_pixels:
            self._project()  # projected L-BFGS: every evaluation in range

    def after_step(self, info: StepInfo) -> None:
        self._project()

    def resized(self, size: Size) -> LowresParam:
        return LowresParam(self.ctx, size, resize(self.low.detach(), low_size(size, self.ctx.cfg.lowres_factor)))

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"low": self.low.detach()}

    @classmethod
    def from_tensors(cls, ctx: ParamContext, size: Size, tensors: dict[str, torch.Tensor]) -> LowresParam:
        return cls(ctx, size, tensors["low"].clone())
