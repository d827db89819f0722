"""Pixels: the canvas itself is optimized (cnn-vis, icnn, Google's deepdream).

The canvas (N, 3, H, W) is stepped in row bands (:class:`cnnvis.params.optim.CanvasOptimizer`),
so the optimizer's temporaries are band-sized, and its per-pixel state (RMSProp's and Adam's
running averages) is resized with the canvas between sizes instead of starting afresh.
After every step icnn's pixel operations run (Shen et al. 2019, after Yosinski et al. 2015).
"""

from __future__ import annotations

import torch

from cnnvis.canvas.sizes import Size, resize
from cnnvis.params.base import Param, ParamContext, StepInfo, register
from cnnvis.params.optim import CanvasOptimizer
from cnnvis.regularize import pixelops
from cnnvis.regularize.penalties import gaussian_blur_

NOISE_BAND_ROWS = 256  # rows of noise drawn at a time: no canvas-sized temporary at 8K


def noise_canvas(ctx: ParamContext, size: Size) -> torch.Tensor:
    """(N, 3, H, W) seeded Gaussian noise of std ``init_scale`` around the mean colour, blurred
    by ``init_blur`` pixels. Image i draws from ``ctx.item_gens[i]`` when given, else all from
    ``ctx.gen`` in order."""
    h, w = size
    x = torch.empty(ctx.batch, 3, h, w)
    for i in range(ctx.batch):
        gen = ctx.item_gens[i] if ctx.item_gens else ctx.gen
        # Filled band by band, in place: at 8K a canvas is 0.8 GB and a temporary would double the peak.
        for a in range(0, h, NOISE_BAND_ROWS):
            x[i:i + 1, :, a:a + NOISE_BAND_ROWS].normal_(generator=gen)
    x.mul_(ctx.cfg.init_scale).add_(torch.tensor(ctx.mean).view(1, 3, 1, 1))
    gaussian_blur_(x, ctx.cfg.init_blur)
    return x.to(ctx.device)


def batched(x: torch.Tensor, n: int) -> torch.Tensor:
    """(1 or n, C, H, W) -> (n, C, H, W): one start image is shared by every batch image."""
    return x if x.shape[0] == n else x.expand(n, *x.shape[1:]).contiguous()


@register("pixel")
class PixelParam(Param):
    """The canvas (N, 3, H, W) as the parameter, stepped in row bands."""

    def __init__(self, ctx: ParamContext, bands: CanvasOptimizer):
        self.ctx, self.bands = ctx, bands
        self.size = tuple(bands.canvas.shape[-2:])
        self.optimizer = bands.opt

    @classmethod
    def create(cls, ctx: ParamContext, size: Size, start: torch.Tensor | None) -> PixelParam:
        canvas = noise_canvas(ctx, size) if start is None else batched(resize(start.to(ctx.device), size), ctx.batch)
        return cls(ctx, CanvasOptimizer(canvas, ctx.cfg))

    def images(self) -> torch.Tensor:
        return self.bands.canvas

    def canvas(self) -> torch.Tensor:
        return self.bands.canvas.detach()

    def parameters(self) -> list[torch.Tensor]:
        return list(self.bands.bands)

    def draw(self) -> torch.Tensor:
        return self.bands.canvas.detach()

    def apply_gradient(self, grad: torch.Tensor) -> None:
        self.bands.set_grad(grad)

    def clear_gradient(self) -> None:
        self.bands.clear_grad()

    def prepare_evaluation(self) -> None:
        if self.ctx.cfg.clamp_pixels:
            with torch.no_grad():
                self.bands.canvas.clamp_(0, 1)  # projected L-BFGS: every evaluation in range

    def resized(self, size: Size) -> PixelParam:
        return PixelParam(self.ctx, self.bands.resized(size))

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"canvas": self.bands.canvas.detach()}

    @classmethod
    def from_tensors(cls, ctx: ParamContext, size: Size, tensors: dict[str, torch.Tensor]) -> PixelParam:
        return cls(ctx, CanvasOptimizer(tensors["canvas"].clone(), ctx.cfg))

    @torch.no_grad()
    def after_step(self, info: StepInfo) -> None:
        """icnn's per-step pixel operations, in its order: decay, clip, blur; each image alone
        (percentiles are per image)."""
        cfg, mean, frac = self.ctx.cfg, self.ctx.mean, info.frac
        canvas = self.bands.canvas
        for i in range(canvas.shape[0]):
            x, g = canvas[i:i + 1], info.grad[i:i + 1]
            pixelops.decay_(x, cfg.scheduled("pixel_decay", frac), mean)
            if cfg.clamp_pixels:
                x.clamp_(0, 1)
            for name, op in (("clip_extreme", lambda p: pixelops.clip_extreme_(x, p)),
                             ("clip_small_norm", lambda p: pixelops.clip_small_norm_(x, p, mean)),
                             ("clip_small_contrib", lambda p: pixelops.clip_small_contrib_(x, g, p, mean))):
                every = getattr(cfg, name + "_every")
                if getattr(cfg, name) and every and (info.step + 1) % every == 0:
                    op(cfg.scheduled(name, frac))
        if cfg.blur_every and (info.step + 1) % cfg.blur_every == 0:
            gaussian_blur_(canvas, cfg.scheduled("blur_sigma", frac))
        if info.mask is not None:
            # outside the image mask the canvas stays at the model's mean colour
            m = torch.tensor(mean, dtype=canvas.dtype, device=canvas.device).view(1, 3, 1, 1)
            canvas.sub_(m).mul_(info.mask).add_(m)
