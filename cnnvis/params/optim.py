"""The optimizers: one table entry per ``--optimizer`` (:class:`OptimizerKind`), and the canvas
optimizer, one torch optimizer for the whole run with its state resized between sizes.

Adding an optimizer is one :func:`register_optimizer` call, here or in any module imported
before the run: its factory, its canvas-sized buffers, how a step drives it and its momentum.

Earlier tools rebuilt the optimizer every iteration, tile or octave and so lost RMSProp's
running averages; here one optimizer owns the canvas for the whole run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import torch

from cnnvis.canvas.sizes import Size, resize
from cnnvis.config import OPTIMIZERS, RenderConfig
from cnnvis.errors import InputError

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


@dataclass(frozen=True)
class OptimizerKind:
    """One ``--optimizer``: all that the pipeline knows about it, in one table entry.

    Attributes:
        name: the ``--optimizer`` value.
        make: ``make(params, cfg)``, the torch optimizer over ``params`` at ``cfg.lr``.
        buffers: ``buffers(cfg)``, the canvas-sized buffers of its state (the memory pre-flight,
            :mod:`cnnvis.pipeline.memory`).
        stepper: how a step uses it (:mod:`cnnvis.pipeline.steppers`): ``"first-order"`` (one
            evaluation, one ``step()``) or ``"closure"`` (``step(closure)``, which evaluates as
            often as its line search needs).
        momentum: heavy-ball momentum, set from ``cfg.momentum`` (scheduled) every step
            (:func:`set_hyper`); RMSProp's own ``momentum`` stays at cnn-vis's 0.
        tuned: situation -> the settings measured best with it there (:mod:`cnnvis.defaults`):
            ``invert`` (any ``cnnvis invert``), ``invert_deep`` (layers of stride >=
            ``DEEP_STRIDE``), ``invert_top`` (the last layers); read by
            :mod:`cnnvis.recipes.recon`.
    """

    name: str
    make: Callable[[Sequence[torch.Tensor], RenderConfig], torch.optim.Optimizer]
    buffers: Callable[[RenderConfig], float]
    stepper: str = "first-order"
    momentum: bool = False
    tuned: Mapping[str, Mapping[str, object]] = field(default_factory=dict)


def register_optimizer(kind: OptimizerKind) -> OptimizerKind:
    """Make ``kind`` available as ``--optimizer NAME`` (a later kind of the same name replaces it)."""
    OPTIMIZERS.add(kind.name, kind)
    return kind


def optimizer_kind(name: str) -> OptimizerKind:
    """The table entry of ``--optimizer name``; :class:`InputError` for an unknown one."""
    kind = OPTIMIZERS.get(name)
    if kind is None:
        raise InputError(f"unknown --optimizer '{name}'; use one of {', '.join(OPTIMIZERS.registered())}")
    return kind


def _lbfgs(params: Sequence[torch.Tensor], cfg: RenderConfig) -> torch.optim.Optimizer:
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


# The table (its names are also cnnvis.config.OPTIMIZERS.shipped, so that --help lists them
# without importing torch). The tuned settings were measured by bench/inversion.py
# (bench/RESULTS.md); cnnvis.defaults holds a copy that --help reads.
register_optimizer(
    OptimizerKind(
        "rmsprop",  # cnn-vis's default: one running average of squared gradients per pixel
        lambda params, cfg: torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.decay_rate, eps=1e-8),
        buffers=lambda cfg: 1,
        tuned={"invert": dict(lr=0.01, lr_end=0.001)},
    )
)
register_optimizer(
    OptimizerKind(
        "sgd",  # one velocity per pixel
        lambda params, cfg: torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum),
        buffers=lambda cfg: 1,
        momentum=True,
        tuned={"invert": dict(lr=0.01, momentum=0.9)},
    )
)
register_optimizer(
    OptimizerKind(
        "adam",  # two running averages per pixel
        lambda params, cfg: torch.optim.Adam(params, lr=cfg.lr),
        buffers=lambda cfg: 2,
        tuned={
            "invert": dict(lr=0.1, lr_end=0.01),
            # The last layers (past 90 % of the modules: conv_head) say little about colour:
            # pixel priors leave colours arbitrary (mean pixel correlation 0.01), a decorrelated
            # Fourier image with strong TV keeps them muted and the layout right (0.13-0.18).
            "invert_top": dict(param="fft", lr=0.05, lr_end=0.01, tv_weight=24.0),
        },
    )
)
register_optimizer(
    OptimizerKind(
        "gd",  # icnn's momentum: one delta per pixel
        lambda params, cfg: MomentumGD(params, lr=cfg.lr, momentum=cfg.momentum),
        buffers=lambda cfg: 1,
        momentum=True,
        tuned={"invert": dict(lr=2 / 255, lr_end=1e-3 / 255, momentum=0.9)},  # icnn's schedule in [0, 1] units
    )
)
register_optimizer(
    OptimizerKind(
        "lbfgs",
        _lbfgs,
        # two vectors per curvature pair (at most one pair per step) plus its direction,
        # previous gradient and line-search copies
        buffers=lambda cfg: 2 * min(cfg.lbfgs_history, cfg.steps) + 4,
        stepper="closure",
        tuned={
            # L-BFGS steps the decorrelated Fourier image: its 1/f spectrum scaling preconditions
            # the problem, which L-BFGS's scalar initial Hessian cannot do for pixels (on pixels it
            # trailed Adam, 0.84 / 0.46 at blocks.1 / 3; on the Fourier image it matches it). Its
            # objective scale is fixed at the first evaluation, when the gradient is largest, so
            # TV weighs more later than under Adam's per-step normalization: a lighter TV.
            "invert": dict(lr=1.0, param="fft", tv_weight=0.3),
            # At stride 8 or more a 2-pixel jitter, drawn once per step (the line search sees one
            # fixed objective), averages out the network's own grid at its stride (grid ratio
            # 1.15 / 1.20 -> 1.11 / 1.17 at equal pixel correlation on the tuning photos).
            "invert_deep": dict(jitter=2),
        },
    )
)


def make_optimizer(params: Sequence[torch.Tensor], cfg: RenderConfig) -> torch.optim.Optimizer:
    """``cfg.optimizer``'s torch optimizer over ``params`` (see :class:`OptimizerKind`)."""
    return optimizer_kind(cfg.optimizer).make(params, cfg)


def lr_at(cfg: RenderConfig, step: int) -> float:
    """Learning rate at ``step`` (0-based, within a size): the linear lr -> lr_end schedule,
    times ``lr_decay_factor`` every ``lr_decay_every`` steps."""
    lr = cfg.scheduled("lr", step / max(1, cfg.steps - 1))
    if cfg.lr_decay_every <= 0:
        return lr
    return lr * cfg.lr_decay_factor ** (step // cfg.lr_decay_every)


def set_hyper(opt: torch.optim.Optimizer, cfg: RenderConfig, lr: float, momentum: float | None = None) -> None:
    """Set the learning rate of every group of ``opt`` (``cfg.optimizer``'s), and the momentum
    where it is heavy-ball (:attr:`OptimizerKind.momentum`) and ``momentum`` is given."""
    heavy_ball = momentum is not None and optimizer_kind(cfg.optimizer).momentum
    for g in opt.param_groups:
        g["lr"] = lr
        if heavy_ball:
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
        set_hyper(self.opt, self.cfg, lr, momentum)

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
