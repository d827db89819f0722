"""The multiscale tiled optimization loop. Reports progress to a callback; never prints or writes.

``cnnvis.render`` runs it. The module is not named ``render`` so that the function and the
module can never shadow each other as attributes of the package.

For each size of the plan, for each step: shift the tile grid, accumulate the objective's
gradient tile by tile into one canvas-sized buffer, add the regularizers' gradients (strip by
strip), take one optimizer step on the whole canvas. Between sizes the canvas and the
optimizer state are resized in float. Memory: one batch of tiles' activations plus a few
canvas-sized buffers (canvas, gradient, optimizer state, optional reference image).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .capture import FeatureCapture
from .config import RenderConfig
from .errors import InputError
from .models import LoadedModel
from .objectives import Capture, Objective
from .octaves import Size, check_plan, resize, size_plan
from .optim import CanvasOptimizer, lr_at
from .regularizers import TV, PNorm, gaussian_blur_, regularizer_gradient
from .tiling import Window, layout, tiled_gradient
from .transforms import jitter_roll


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; otherwise the named device, checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device '{name}'; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device '{name}' is not available (no CUDA GPU found); use --device cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device '{name}' is not available (no Apple MPS); use --device cpu")
    return dev


@dataclass(frozen=True)
class Progress:
    """One finished step. ``step`` counts from 1 over the whole run; ``size_step`` within a size."""

    step: int
    total: int
    size_index: int
    num_sizes: int
    size: Size
    size_step: int
    steps_per_size: int
    score: float
    reg_loss: float
    lr: float
    render: Render

    def image(self) -> torch.Tensor:
        """The current canvas, (1, 3, H, W) float, a detached copy."""
        return self.render.image()


class Render:
    """One run of the pipeline. Build it, then call :meth:`run`; :meth:`image` is the live canvas.

    Args:
        model: the network and its preprocessing.
        objective: what to maximize (its ``.layers`` are hooked).
        cfg: every setting; see :class:`RenderConfig`.
        init: (1, 3, H, W) RGB in [0, 1] to start from (sizes relative to it), or ``None`` for noise
            (sizes relative to the model input).
        device: where tiles are computed and the canvas lives.
    """

    def __init__(self, model: LoadedModel, objective: Objective, cfg: RenderConfig, init: torch.Tensor | None = None, device: torch.device | str = "cpu"):
        self.model, self.objective, self.cfg = model, objective, cfg
        self.device = torch.device(device)
        self.model.to(self.device)
        self.init = None if init is None else init.to(self.device, torch.float32)
        self.from_image = init is not None
        base = tuple(init.shape[-2:]) if init is not None else (model.input_size, model.input_size)
        self.plan: list[Size] = size_plan(base, cfg.initial_size, cfg.final_size, cfg.num_sizes, cfg.size_spacing, cfg.octaves, cfg.octave_scale)
        check_plan(self.plan, model.min_size, model.name)
        self.tile = cfg.tile or model.input_size
        if self.tile < model.min_size:
            raise InputError(f"--tile {self.tile} is below the minimum input {model.min_size} of {model.name}; use --tile {model.min_size} or more")
        self.overlap = self.tile // 4 if cfg.overlap is None else cfg.overlap
        if self.overlap >= self.tile:
            raise InputError(f"--overlap {self.overlap} must be smaller than the tile ({self.tile}); e.g. --overlap {self.tile // 4}")
        self.gen = torch.Generator().manual_seed(cfg.seed)
        self.capture = FeatureCapture(model.module, objective.layers, model_name=model.name)
        self.canvas: torch.Tensor | None = None
        self.size_index = 0
        with self.capture:
            # Fail on bad indices or sizes now, before any output or progress bar: one probe
            # per distinct tile shape.
            for size in dict.fromkeys((min(self.tile, h), min(self.tile, w)) for h, w in self.plan):
                self._probe(size)

    # ------------------------------------------------------------------ pieces
    def image(self) -> torch.Tensor:
        if self.canvas is None:
            raise RuntimeError("render has not started")
        return self.canvas.detach().clone()

    def _initial_canvas(self, size: Size) -> torch.Tensor:
        if self.init is not None:
            return resize(self.init, size)
        h, w = size
        # Filled band by band, in place: at 8K a canvas is 0.8 GB and a temporary would double the peak.
        x = torch.empty(1, 3, h, w)
        for a in range(0, h, 256):
            x[:, :, a:a + 256].normal_(generator=self.gen)
        x.mul_(self.cfg.init_scale).add_(torch.tensor(self.model.mean).view(1, 3, 1, 1))
        gaussian_blur_(x, self.cfg.init_blur)
        return x.to(self.device)

    def _p_target(self) -> str:
        """Where the p-norm pulls: ``auto`` means toward the init image when there is one."""
        if self.cfg.p_target != "auto":
            return self.cfg.p_target
        return "init" if self.from_image else "zero"

    def _regularizers(self, step: int) -> list:
        c = self.cfg
        target = self._p_target()
        tv_w = c.tv_weight + c.tv_step * (step // c.tv_step_every if c.tv_step_every else 0)
        return [
            TV(tv_w, c.tv_beta, c.tv_operator, c.tv_scale),
            PNorm(c.p_weight, c.p_alpha, c.p_scale, target, self.model.mean),
            PNorm(c.aux_p_weight, c.aux_p_alpha, c.aux_p_scale, "zero", self.model.mean),
        ]

    def _score(self, tiles: torch.Tensor, windows: Sequence[Window]) -> torch.Tensor:
        x = jitter_roll(tiles, self.cfg.jitter, self.gen)
        feats = self.capture(self.model.normalize(x))
        return self.objective(Capture(tiles, feats, windows, tuple(self.canvas.shape[-2:])))

    def _probe(self, size: Size) -> None:
        """One forward pass on a tile: catches sizes the network cannot take and bad indices."""
        th, tw = min(self.tile, size[0]), min(self.tile, size[1])
        x = torch.full((1, 3, th, tw), 0.5, device=self.device)
        try:
            with torch.no_grad():
                feats = self.capture(self.model.normalize(x))
        except RuntimeError as e:
            raise InputError(f"{self.model.name} cannot take a {th}x{tw} tile ({str(e).splitlines()[0][:100]}); use a larger --tile or size") from None
        self.objective.check(feats)

    # ------------------------------------------------------------------ loop
    def run(self, callback: Callable[[Progress], None] | None = None) -> torch.Tensor:
        """Optimize through every size; return the final canvas (1, 3, H, W) float (unclipped)."""
        cfg = self.cfg
        total = len(self.plan) * cfg.steps
        done = 0
        with self.capture:
            opt = CanvasOptimizer(self._initial_canvas(self.plan[0]), cfg)
            if not (cfg.p_weight > 0 and self._p_target() == "init"):
                self.init = None  # only the p-norm toward the image needs it later: free it now
            for si, size in enumerate(self.plan):
                if si > 0:
                    opt = opt.resized(size)
                canvas = opt.canvas
                self.canvas, self.size_index = canvas, si
                ref = None if self.init is None else resize(self.init, size)
                grad = torch.zeros_like(canvas)
                for t in range(cfg.steps):
                    score, reg_loss, lr = self._step(canvas, opt, grad, ref, t)
                    done += 1
                    if callback is not None:
                        callback(Progress(done, total, si, len(self.plan), size, t + 1, cfg.steps, score, reg_loss, lr, self))
                del grad, ref
        return canvas

    def _step(self, canvas: torch.Tensor, opt: CanvasOptimizer, grad: torch.Tensor, ref, t: int) -> tuple[float, float, float]:
        cfg = self.cfg
        lr = lr_at(cfg, t)
        opt.set_lr(lr)
        h, w = canvas.shape[-2:]
        stride = max(1, min(self.tile, h, w) - self.overlap)
        if cfg.shift:
            oy, ox = (int(v) for v in torch.randint(0, stride, (2,), generator=self.gen))
        else:
            oy = ox = 0
        tiles = layout(h, w, self.tile, self.overlap, (oy, ox), device=self.device)
        grad.zero_()
        score = tiled_gradient(canvas, tiles, self._score, cfg.batch_size, grad)
        grad.neg_()  # the optimizer minimizes -score + regularizers
        if cfg.normalize_grad:
            # Google's deepdream divides the step by mean |g|: the objective's scale then
            # no longer depends on the layer or model, and regularizer weights keep a meaning.
            grad.div_(float(torch.linalg.vector_norm(grad, ord=1)) / grad.numel() + 1e-12)
        reg_loss = regularizer_gradient(canvas, self._regularizers(t), grad, ref)
        opt.step(grad)
        if cfg.blur_every and (t + 1) % cfg.blur_every == 0:
            with torch.no_grad():
                gaussian_blur_(canvas, cfg.blur_sigma)
        return score, reg_loss, lr


def render(model: LoadedModel, objective: Objective, cfg: RenderConfig | None = None, init: torch.Tensor | None = None, device: torch.device | str = "cpu", callback: Callable[[Progress], None] | None = None) -> torch.Tensor:
    """Run the pipeline once; see :class:`Render`. Returns the final canvas (1, 3, H, W)."""
    return Render(model, objective, cfg or RenderConfig(), init, device).run(callback)
