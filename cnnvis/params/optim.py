"""The canvas optimizer: one torch optimizer for the whole run, its state resized between sizes.

Earlier tools rebuilt the optimizer every iteration, tile or octave and so lost RMSProp's
running averages; here one optimizer owns the canvas for the whole run.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import torch

from cnnvis.canvas.sizes import Size, resize
from cnnvis.config import RenderConfig

BAND_ROWS = 256
# torch derives max_eval from max_iter (1.25 x 1 -> 1), which would let the line search accept
# its first trial point however bad: allow it real bracketing and zooming.
LBFGS_MAX_EVALS = 20


class MomentumGD(torch.optim.Optimizer):
    """icnn's gradient descent with momentum: ``delta = momentum * delta + lr * g; x -= delta``.

    Unlike ``torch.optim.SGD`` (``v = m v + g; x -= lr v``) the learning rate enters the
    velocity, so icnn's linear lr schedule (lr_start -> lr_end) shrinks new steps without
    rescaling the momentum already built up (Shen et al. 2019, icnn's ``icnn_gd``).
    """

    def __init__(self, params, lr: float, momentum: float = 0.9):
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "delta" not in state:
                    state["delta"] = torch.zeros_like(p)
                d = state["delta"]
                d.mul_(group["momentum"]).add_(p.grad, alpha=group["lr"])
                p.sub_(d)
        return loss


def make_optimizer(params: Sequence[torch.Tensor], cfg: RenderConfig) -> torch.optim.Optimizer:
    """RMSProp (cnn-vis's default), SGD with momentum, Adam, icnn's GD or L-BFGS over ``params``."""
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.decay_rate, eps=1e-8)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum)
    if cfg.optimizer == "gd":
        return MomentumGD(params, lr=cfg.lr, momentum=cfg.momentum)
    if cfg.optimizer == "lbfgs":
        # One iteration per pipeline step; the strong-Wolfe line search re-evaluates the closure
        # (every tile, forward and backward) as often as it needs.
        return torch.optim.LBFGS(
            params,
            lr=cfg.lr,
            max_iter=1,
            max_eval=LBFGS_MAX_EVALS,
            history_size=cfg.lbfgs_history,
            line_search_fn="strong_wolfe",
        )
    return torch.optim.Adam(params, lr=cfg.lr)


def lr_at(cfg: RenderConfig, step: int) -> float:
    """Learning rate at ``step`` (0-based, within a size): the linear lr -> lr_end schedule,
    times ``lr_decay_factor`` every ``lr_decay_every`` steps."""
    lr = cfg.scheduled("lr", step / max(1, cfg.steps - 1))
    if cfg.lr_decay_every <= 0:
        return lr
    return lr * cfg.lr_decay_factor ** (step // cfg.lr_decay_every)


def set_hyper(opt: torch.optim.Optimizer, lr: float, momentum: float | None = None) -> None:
    """Set the learning rate (and the momentum of SGD and icnn's GD) of every group.

    RMSProp also has a ``momentum`` entry, which cnn-vis leaves at 0: it is not touched."""
    heavy_ball = isinstance(opt, (torch.optim.SGD, MomentumGD))
    for g in opt.param_groups:
        g["lr"] = lr
        if momentum is not None and heavy_ball:
            g["momentum"] = momentum


class CanvasOptimizer:
    """A torch optimizer over a canvas (N, 3, H, W), stepped in row bands.

    The parameters handed to ``torch.optim`` are non-overlapping row-band *views* of the
    canvas, so the optimizer's temporaries (RMSProp's sqrt of the running average, Adam's
    denominator) are band-sized, not canvas-sized: 200 MB saved at 4096x4096, 800 MB at 8K.
    The update is the same as one optimizer over the whole canvas, elementwise.
    """

    def __init__(self, canvas: torch.Tensor, cfg: RenderConfig, band_rows: int = BAND_ROWS):
        self.canvas, self.cfg, self.band_rows = canvas, cfg, band_rows
        self.starts = list(range(0, canvas.shape[-2], band_rows))
        self.bands = [canvas[:, :, a : a + band_rows].requires_grad_(True) for a in self.starts]
        self.opt = make_optimizer(self.bands, cfg)

    def set_lr(self, lr: float, momentum: float | None = None) -> None:
        set_hyper(self.opt, lr, momentum)

    def set_grad(self, grad: torch.Tensor) -> None:
        """Hand ``grad`` (N, 3, H, W), d(loss)/d(canvas), to the bands as views (no copy)."""
        for a, band in zip(self.starts, self.bands):
            band.grad = grad[:, :, a : a + band.shape[-2]]

    def clear_grad(self) -> None:
        for band in self.bands:
            band.grad = None

    def step(self, grad: torch.Tensor) -> None:
        """One update of the canvas, in place, from ``grad`` (N, 3, H, W) of the loss to minimize."""
        self.set_grad(grad)
        self.opt.step()
        self.clear_grad()

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
            if isinstance(value, torch.Tensor) and value.dim() == 4:  # per-pixel state, (N, 3, rows, W)
                full = resize(self.state(key), size, interpolation=cv2.INTER_LINEAR)
                if key in ("square_avg", "exp_avg_sq"):
                    full.clamp_min_(0)
                # Band states are views of one buffer: the optimizer updates them in place,
                # and no second canvas-sized copy is made.
                for a, band in zip(new.starts, new.bands):
                    new.opt.state[band][key] = full[:, :, a : a + band.shape[-2]]
            else:
                for band in new.bands:
                    new.opt.state[band][key] = value.clone() if isinstance(value, torch.Tensor) else value
        return new
