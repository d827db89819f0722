"""Pixels: the canvas itself is optimized (cnn-vis, icnn, Google's deepdream).

The canvas (N, 3, H, W) is stepped in row bands (:class:`cnnvis.params.optim.CanvasOptimizer`),
so the optimizer's temporaries are band-sized, and its per-pixel state (RMSProp's and Adam's
running averages) is resized with the canvas between sizes instead of starting afresh.
After every step icnn's pixel operations run (Shen et al. 2019, after Yosinski et al. 2015).

``--decorrelate`` (``pixel-decorrelated``): the canvas is stored in lucid's decorrelated colour
space (:mod:`cnnvis.params.color`) and mapped to RGB for every evaluation; the pixel operations
run on the RGB image. ``--alpha``: the canvas is RGBA (N, 4, H, W); the pixel operations touch
its colours only, and its alpha is kept in [0, 1].
"""

from __future__ import annotations

import torch

from cnnvis.canvas.sizes import Size, resize
from cnnvis.params.base import Param, ParamContext, StepInfo, register
from cnnvis.params.color import COLOR, START_ALPHA, channels, from_rgb, mix, to_rgb, with_alpha
from cnnvis.params.optim import CanvasOptimizer
from cnnvis.regularize import pixelops
from cnnvis.regularize.penalties import gaussian_blur_

NOISE_BAND_ROWS = 256  # rows of noise drawn at a time: no canvas-sized temporary at 8K
# The decorrelated canvas also keeps its RGB image and the gradient in its own colour space.
DECORRELATED_BUFFERS = 2


def noise_canvas(ctx: ParamContext, size: Size) -> torch.Tensor:
    """(N, C, H, W) seeded Gaussian noise of std ``init_scale`` around the mean colour, blurred
    by ``init_blur`` pixels (with ``cfg.alpha`` C = 4: an alpha channel of ``START_ALPHA``).
    Image i draws from ``ctx.item_gens[i]`` when given, else all from ``ctx.gen`` in order."""
    h, w = size
    x = torch.empty(ctx.batch, 3, h, w)
    for i in range(ctx.batch):
        gen = ctx.item_gens[i] if ctx.item_gens else ctx.gen
        # Filled band by band, in place: at 8K a canvas is 0.8 GB and a temporary would double the peak.
        for a in range(0, h, NOISE_BAND_ROWS):
            x[i : i + 1, :, a : a + NOISE_BAND_ROWS].normal_(generator=gen)
    x.mul_(ctx.cfg.init_scale).add_(torch.tensor(ctx.mean).view(1, 3, 1, 1))
    gaussian_blur_(x, ctx.cfg.init_blur)
    if ctx.cfg.alpha:
        x = torch.cat([x, torch.full_like(x[:, :1], START_ALPHA)], 1)
    return x.to(ctx.device)


def start_canvas(ctx: ParamContext, size: Size, start: torch.Tensor | None) -> torch.Tensor:
    """The first RGB(A) canvas (N, C, H, W) at ``size``: seeded noise, or ``start`` (1 or N, 3 or
    4, H', W') resized."""
    if start is None:
        return noise_canvas(ctx, size)
    return batched(with_alpha(resize(start.to(ctx.device), size), channels(ctx.cfg)), ctx.batch)


def batched(x: torch.Tensor, n: int) -> torch.Tensor:
    """(1 or n, C, H, W) -> (n, C, H, W): one start image is shared by every batch image."""
    return x if x.shape[0] == n else x.expand(n, *x.shape[1:]).contiguous()


@register("pixel")
class PixelParam(Param):
    """The canvas (N, C, H, W) as the parameter, stepped in row bands (C = 4 with ``cfg.alpha``)."""

    accepts_pixel_ops = True
    tuned = {
        # cnnvis invert at layers of stride 8 or more (blocks.3 and deeper on EfficientNet-Lite0),
        # whose features have lost fine detail: a stronger TV prior and a shrinking blur (icnn's
        # image_blur, which edits pixels) lift the pixel correlation at blocks.5 from 0.28 to
        # 0.37, but cost blocks.1 0.04 (bench/RESULTS.md).
        "invert_deep": dict(tv_weight=4.0, blur_every=4, blur_sigma=1.5, blur_sigma_end=0.5),
    }

    def __init__(self, ctx: ParamContext, bands: CanvasOptimizer):
        self.ctx, self.bands = ctx, bands
        self.size = tuple(bands.canvas.shape[-2:])
        self.optimizer = bands.opt

    @classmethod
    def canvas_buffers(cls, cfg) -> float:
        return DECORRELATED_BUFFERS if cfg.decorrelate else 0

    @classmethod
    def create(cls, ctx: ParamContext, size: Size, start: torch.Tensor | None) -> PixelParam:
        if cls is PixelParam and ctx.cfg.decorrelate:
            return DecorrelatedPixelParam.create(ctx, size, start)
        return cls(ctx, CanvasOptimizer(start_canvas(ctx, size, start), ctx.cfg))

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
        pixel_ops_(self.bands.canvas, self.ctx, info)


@torch.no_grad()
def pixel_ops_(canvas: torch.Tensor, ctx: ParamContext, info: StepInfo) -> None:
    """icnn's pixel operations on an RGB(A) canvas (N, C, H, W), in place, in icnn's order:
    decay, clip, blur, then the image mask; each image alone (percentiles are per image). Of an
    RGBA canvas they change the colours only (the blur blurs alpha too), and alpha is kept in
    [0, 1]."""
    cfg, mean, frac = ctx.cfg, ctx.mean, info.frac
    rgba = canvas.shape[1] == 4
    for i in range(canvas.shape[0]):
        x, g = (canvas[i : i + 1, :3], info.grad[i : i + 1, :3]) if rgba else (canvas[i : i + 1], info.grad[i : i + 1])
        pixelops.decay_(x, cfg.scheduled("pixel_decay", frac), mean)
        if cfg.clamp_pixels:
            x.clamp_(0, 1)
        for name, op in (
            ("clip_extreme", lambda p: pixelops.clip_extreme_(x, p)),
            ("clip_small_norm", lambda p: pixelops.clip_small_norm_(x, p, mean)),
            ("clip_small_contrib", lambda p: pixelops.clip_small_contrib_(x, g, p, mean)),
        ):
            every = getattr(cfg, name + "_every")
            if getattr(cfg, name) and every and (info.step + 1) % every == 0:
                op(cfg.scheduled(name, frac))
    if cfg.blur_every and (info.step + 1) % cfg.blur_every == 0:
        gaussian_blur_(canvas, cfg.scheduled("blur_sigma", frac))
    if info.mask is not None:
        # outside the image mask the canvas stays at the model's mean colour
        m = torch.tensor(mean, dtype=canvas.dtype, device=canvas.device).view(1, 3, 1, 1)
        rgb = canvas[:, :3] if rgba else canvas
        rgb.sub_(m).mul_(info.mask).add_(m)
    if rgba:
        canvas[:, 3:].clamp_(0, 1)


def _any_pixel_op(cfg, mask) -> bool:
    """Whether :func:`pixel_ops_` would change anything."""
    return bool(
        cfg.pixel_decay
        or cfg.pixel_decay_end
        or cfg.clamp_pixels
        or cfg.clip_extreme
        or cfg.clip_small_norm
        or cfg.clip_small_contrib
        or cfg.blur_every
        or mask is not None
        or cfg.alpha
    )


@register("pixel-decorrelated", choice=False)
class DecorrelatedPixelParam(PixelParam):
    """``--param pixel --decorrelate``: the canvas stored as ``y``, the image ``mean + COLOR @ y``
    (:func:`cnnvis.params.color.to_rgb`), stepped in row bands. The gradient reaches ``y`` as
    ``COLOR.T @ grad``; the pixel operations, when any is on, run on the RGB image, which is then
    mapped back (the map is linear: exactly, to float rounding). Its per-pixel optimizer state is
    resized with the canvas, as the plain pixel canvas's."""

    def __init__(self, ctx: ParamContext, bands: CanvasOptimizer):
        super().__init__(ctx, bands)
        self._grad_y: torch.Tensor | None = None

    @classmethod
    def create(cls, ctx: ParamContext, size: Size, start: torch.Tensor | None) -> DecorrelatedPixelParam:
        return cls(ctx, CanvasOptimizer(from_rgb(start_canvas(ctx, size, start), ctx.mean), ctx.cfg))

    def images(self) -> torch.Tensor:
        return to_rgb(self.bands.canvas, self.ctx.mean)

    def canvas(self) -> torch.Tensor:
        with torch.no_grad():
            return self.images()

    def draw(self) -> torch.Tensor:
        return self.canvas()

    def apply_gradient(self, grad: torch.Tensor) -> None:
        gy = mix(COLOR.T, grad[:, :3])
        self._grad_y = gy if grad.shape[1] == 3 else torch.cat([gy, grad[:, 3:]], 1)
        self.bands.set_grad(self._grad_y)

    def clear_gradient(self) -> None:
        self.bands.clear_grad()
        self._grad_y = None

    @torch.no_grad()
    def _in_rgb(self, fn) -> None:
        """Run ``fn(rgb canvas)`` (in place) on the RGB image and store the result back as ``y``."""
        x = self.images()
        fn(x)
        self.bands.canvas.copy_(from_rgb(x, self.ctx.mean))

    def prepare_evaluation(self) -> None:
        if self.ctx.cfg.clamp_pixels:
            self._in_rgb(lambda x: x.clamp_(0, 1))  # projected L-BFGS: every evaluation in range

    def after_step(self, info: StepInfo) -> None:
        if _any_pixel_op(self.ctx.cfg, info.mask):
            self._in_rgb(lambda x: pixel_ops_(x, self.ctx, info))

    def resized(self, size: Size) -> DecorrelatedPixelParam:
        return DecorrelatedPixelParam(self.ctx, self.bands.resized(size))
