"""The canvas optimizer: one torch optimizer for the whole run, its state resized between sizes.

Earlier tools rebuilt the optimizer every iteration, tile or octave and so lost RMSProp's
running averages; here one optimizer owns the canvas for the whole run.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import torch

from .config import RenderConfig
from .octaves import Size, resize

BAND_ROWS = 256


def make_optimizer(params: Sequence[torch.Tensor], cfg: RenderConfig) -> torch.optim.Optimizer:
    """RMSProp (cnn-vis's default), SGD with momentum, or Adam over ``params``."""
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.decay_rate, eps=1e-8)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.Adam(params, lr=cfg.lr)


def lr_at(cfg: RenderConfig, step: int) -> float:
    """Learning rate at ``step`` (0-based, within a size): decayed by a factor every N steps."""
    if cfg.lr_decay_every <= 0:
        return cfg.lr
    return cfg.lr * cfg.lr_decay_factor ** (step // cfg.lr_decay_every)


class CanvasOptimizer:
    """A torch optimizer over a canvas (1, 3, H, W), stepped in row bands.

    The parameters handed to ``torch.optim`` are non-overlapping row-band *views* of the
    canvas, so the optimizer's temporaries (RMSProp's sqrt of the running average, Adam's
    denominator) are band-sized, not canvas-sized: 200 MB saved at 4096x4096, 800 MB at 8K.
    The update is the same as one optimizer over the whole canvas, elementwise.
    """

    def __init__(self, canvas: torch.Tensor, cfg: RenderConfig, band_rows: int = BAND_ROWS):
        self.canvas, self.cfg, self.band_rows = canvas, cfg, band_rows
        self.starts = list(range(0, canvas.shape[-2], band_rows))
        self.bands = [canvas[:, :, a:a + band_rows].requires_grad_(True) for a in self.starts]
        self.opt = make_optimizer(self.bands, cfg)

    def set_lr(self, lr: float) -> None:
        for g in self.opt.param_groups:
            g["lr"] = lr

    def step(self, grad: torch.Tensor) -> None:
        """One update of the canvas, in place, from ``grad`` (1, 3, H, W) of the loss to minimize."""
        for a, band in zip(self.starts, self.bands):
            band.grad = grad[:, :, a:a + band.shape[-2]]
        self.opt.step()
        for band in self.bands:
            band.grad = None

    def state(self, key: str) -> torch.Tensor | None:
        """The canvas-shaped optimizer state ``key`` (e.g. ``square_avg``), or None before any step."""
        parts = [self.opt.state.get(b, {}).get(key) for b in self.bands]
        if any(p is None for p in parts):
            return None
        return torch.cat(parts, dim=-2)

    def resized(self, size: Size) -> CanvasOptimizer:
        """A new optimizer over the canvas resized to ``size`` (float32), with the state carried.

        Canvas-shaped state is resized bilinearly; squared-gradient averages are clamped at zero
        (interpolation can undershoot); scalars such as the step count are kept.
        """
        new = CanvasOptimizer(resize(self.canvas, size), self.cfg, self.band_rows)
        first = self.opt.state.get(self.bands[0], {})
        for key, value in first.items():
            if isinstance(value, torch.Tensor) and value.dim() == 4:  # per-pixel state, (1, 3, rows, W)
                full = resize(self.state(key), size, interpolation=cv2.INTER_LINEAR)
                if key in ("square_avg", "exp_avg_sq"):
                    full.clamp_min_(0)
                # Band states are views of one buffer: the optimizer updates them in place,
                # and no second canvas-sized copy is made.
                for a, band in zip(new.starts, new.bands):
                    new.opt.state[band][key] = full[:, :, a:a + band.shape[-2]]
            else:
                for band in new.bands:
                    new.opt.state[band][key] = value.clone() if isinstance(value, torch.Tensor) else value
        return new
