"""The multiscale tiled optimization loop. Reports progress to a callback; never prints or writes.

For each size of the plan, for each step: shift the tile grid, take d(loss)/d(canvas) of the N
images tile by tile (:mod:`cnnvis.pipeline.gradient`), let the stepping strategy update the
parameterization (:mod:`cnnvis.pipeline.steppers`), then the parameterization's own after-step
work (pixel operations, latent bounds). Between sizes the parameterization resizes itself, its
optimizer state included where that has a meaning. The loop knows no kind of parameterization
or optimizer: :mod:`cnnvis.params` and the steppers do.

Memory: one batch of tiles' activations plus a few canvas-sized buffers (canvas, gradient,
optimizer state, optional references), checked before anything is allocated
(:mod:`cnnvis.pipeline.memory`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

from cnnvis.canvas.sizes import Size, check_plan, resize, size_plan
from cnnvis.canvas.start import Start
from cnnvis.config import RenderConfig
from cnnvis.errors import InputError
from cnnvis.models.compute import execution
from cnnvis.models.registry import LoadedModel
from cnnvis.objectives.base import Features, Objective
from cnnvis.params import ParamContext, StepInfo, restore
from cnnvis.params.optim import lr_at
from cnnvis.params.stages import Stages
from cnnvis.pipeline.attribution import with_alpha_from
from cnnvis.pipeline.gradient import CanvasGradient
from cnnvis.pipeline.memory import preflight
from cnnvis.pipeline.progress import Progress
from cnnvis.pipeline.steppers import make_stepper
from cnnvis.regularize.terms import Terms

# The canvas-sized buffers of a size that is only drawn (a resolution-free parameterization's
# final size): the canvas and the copy made to write it.
RENDER_BUFFERS = 2


class Render:
    """One run of the pipeline over N images. Build it, then call :meth:`run`; :meth:`image` is
    the live canvas (N, C, H, W) (C = 4, RGBA, with ``cfg.alpha``; the network then sees it
    composited over random backgrounds, :class:`cnnvis.regularize.transforms.Composite`).

    A resolution-free parameterization (the CPPN) is optimized at the sizes of the plan that fit
    one tile (:func:`cnnvis.params.stages.optimized_sizes`); a larger last size is then drawn from
    it with no optimization: :attr:`plan` holds the optimized sizes, :attr:`out_size` the size
    returned.

    Args:
        model: the network and its preprocessing.
        objective: what to maximize (its ``layers`` are hooked; its ``references`` are compared
            window by window, see :class:`cnnvis.pipeline.gradient.CanvasGradient`).
        cfg: every setting; see :class:`RenderConfig`.
        start: the start image or base size, the image mask and the number of images
            (:class:`cnnvis.canvas.start.Start`; default: one noise image at the model's input size).
        device: where tiles are computed and the canvas lives.
        stages: the parameterization of each size (:class:`cnnvis.params.stages.Stages`; default:
            ``cfg.param``'s kind throughout; a generator's latent first, then pixels:
            :class:`cnnvis.params.generator.GeneratorStages`).
        terms: transforms and penalties that replace or add to the settings' own
            (:class:`cnnvis.regularize.terms.Terms`).
    """

    def __init__(
        self,
        model: LoadedModel,
        objective: Objective,
        cfg: RenderConfig,
        start: Start | None = None,
        device: torch.device | str = "cpu",
        *,
        stages: Stages | None = None,
        terms: Terms | None = None,
    ):
        self.model, self.objective, self.cfg = model, objective, cfg
        self.start, self.stages, self.terms = start or Start(), stages or Stages(), terms or Terms()
        self.device = torch.device(device)
        self.model.to(self.device)
        init = self.start.init
        self.init = None if init is None else init.to(self.device, torch.float32)
        self.from_image = init is not None
        self.batch = self.start.images
        self._plan_sizes()
        self._preflight()
        mask = self.start.mask
        self.mask = None if mask is None else mask.to(self.device, torch.float32)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        seeds = self.start.item_seeds
        item_gens = None if seeds is None else [torch.Generator().manual_seed(int(s)) for s in seeds]
        ctx = ParamContext(cfg, self.device, self.gen, tuple(model.mean), self.batch, model, item_gens=item_gens)
        self.ctx = self.stages.context(ctx)
        self._build_gradient()
        self.stepper = make_stepper(cfg.optimizer, cfg.normalize_grad)
        self.cfg_main = cfg
        self._canvas: torch.Tensor | None = None
        self._canvas_of = None  # a parameterization whose canvas is drawn when next read (see canvas)
        self.param = None  # the current parameterization (a cnnvis.params.base.Param)
        self.size_index = 0
        self._steps_done = self._done = 0  # steps finished in the current size, and in all
        with self.capture:
            # Fail on bad indices or sizes now, before any output or progress bar: one probe
            # per distinct tile shape.
            for size_ in dict.fromkeys(self._tile_shape(size) for size in self.plan):
                self._probe(size_)

    def _plan_sizes(self) -> None:
        """The size plan (:attr:`plan`, :attr:`out_size`) and the tile, checked against the model
        and the stages."""
        cfg, model = self.cfg, self.model
        base = self.start.base_size(model.input_size)
        plan: list[Size] = size_plan(
            base, cfg.initial_size, cfg.final_size, cfg.num_sizes, cfg.size_spacing, cfg.octaves, cfg.octave_scale
        )
        check_plan(plan, model.min_size, model.name)
        self.tile = cfg.tile or model.input_size
        if model.fixed_size and self.tile != model.input_size:
            raise InputError(
                f"--tile {self.tile}: {model.name} takes only {model.input_size}x{model.input_size} input, "
                "so its tiles are that size; drop --tile"
            )
        if self.tile < model.min_size:
            raise InputError(
                f"--tile {self.tile} is below the minimum input {model.min_size} of {model.name}; "
                f"use --tile {model.min_size} or more"
            )
        crop = round(self.tile * cfg.transform_crop)
        if not model.fixed_size and crop < model.min_size:
            raise InputError(
                f"--transform-crop {cfg.transform_crop}: a crop of {crop} px of the {self.tile} px tile is below "
                f"the minimum input {model.min_size} of {model.name}; use --transform-crop "
                f"{min(1.0, math.ceil(100 * model.min_size / self.tile) / 100)} or more"
            )
        self.stages.check(cfg, self.from_image)
        self.out_size: Size = plan[-1]
        self.plan = self.stages.sizes(cfg, plan, self.tile, model.min_size)
        check_plan(self.plan, model.min_size, model.name)
        self.overlap = self.tile // 4 if cfg.overlap is None else cfg.overlap
        if self.overlap >= self.tile:
            raise InputError(
                f"--overlap {self.overlap} must be smaller than the tile ({self.tile}); e.g. --overlap {self.tile // 4}"
            )

    def _preflight(self) -> None:
        """Refuse a plan whose canvas-sized buffers do not fit in memory, before allocating any."""
        largest = max(self.plan, key=lambda s: s[0] * s[1])
        preflight(largest, self.batch, self.cfg, self.device, len(self.objective.references))
        if self.out_size != self.plan[-1]:
            preflight(self.out_size, self.batch, self.cfg, self.device, buffers=RENDER_BUFFERS)

    def _build_gradient(self) -> None:
        """The hooks on the objective's layers and the tiled canvas gradient through them."""
        cfg = self.cfg
        self.execution = execution(cfg.compute, self.model.module, self.device)
        self.capture = self.model.capture(self.objective.layers, execution=self.execution)
        self.gradient = CanvasGradient(
            self.model,
            self.objective,
            self.capture,
            self.tile,
            self.overlap,
            cfg.batch_size,
            self.terms.transforms_for(cfg),
            self.device,
            cfg.lap_scale,
        )
        self.gradient.track_attribution = cfg.alpha_from_grad
        self.gradient.views = cfg.transform_views

    @property
    def total_steps(self) -> int:
        """Steps of the whole run, every stage's own."""
        return self.stages.total_steps(self.cfg_main, len(self.plan))

    def _use(self, cfg: RenderConfig) -> None:
        """Run the next steps under ``cfg`` (a stage's settings): its stepper and transforms."""
        self.cfg = cfg
        self.ctx = dataclasses.replace(self.ctx, cfg=cfg)
        self.stepper = make_stepper(cfg.optimizer, cfg.normalize_grad)
        self.gradient.transforms = self.terms.transforms_for(cfg)
        self.gradient.views = cfg.transform_views

    def _enter_stage(self, index: int) -> None:
        """Switch to the settings of the stage at plan index ``index`` when they differ."""
        cfg = self.stages.settings(self.cfg_main, index, len(self.plan))
        if cfg is not self.cfg:
            self._use(cfg)

    @property
    def canvas(self) -> torch.Tensor | None:
        """The current canvas (N, C, H, W), detached. After a step it is drawn when first read: the
        next step draws it anyway, and a Fourier image's draw is an irfft (3 % of a 224 px step)."""
        if self._canvas_of is not None:
            self._canvas, self._canvas_of = self._canvas_of.canvas(), None
        return self._canvas

    @canvas.setter
    def canvas(self, value: torch.Tensor | None) -> None:
        self._canvas, self._canvas_of = value, None

    def image(self) -> torch.Tensor:
        """The current canvas (N, C, H, W), a detached copy."""
        if self.canvas is None:
            raise RuntimeError("render has not started")
        return self._kept(self._with_attribution(self.canvas.detach().clone()))

    def _kept(self, canvas: torch.Tensor) -> torch.Tensor:
        """``canvas`` (N, C, H, W), or with ``Start.keep_best`` the (1, C, H, W) image the objective scored
        highest at the last evaluation (the first image before any)."""
        if not self.start.keep_best or canvas.shape[0] < 2:
            return canvas
        scores = self.gradient.item_scores
        best = 0 if scores is None or scores.numel() != canvas.shape[0] else int(torch.argmax(scores))
        return canvas[best : best + 1]

    def _with_attribution(self, canvas: torch.Tensor) -> torch.Tensor:
        """``canvas`` as RGBA with the attribution as its alpha, with ``cfg.alpha_from_grad``."""
        if not self.cfg_main.alpha_from_grad:
            return canvas
        return with_alpha_from(canvas, self.gradient.attribution)

    def _tile_shape(self, size: Size) -> Size:
        """The shape of the tiles of a canvas of ``size``: the tile, or the canvas where it is
        smaller (a fixed-size model's tiles are always the tile: the canvas is enlarged)."""
        if self.model.fixed_size:
            return self.tile, self.tile
        return min(self.tile, size[0]), min(self.tile, size[1])

    def _probe(self, size: Size) -> None:
        """One forward pass on a tile: catches sizes the network cannot take and bad indices."""
        th, tw = size
        x = torch.full((1, 3, th, tw), 0.5, device=self.device)
        try:
            with torch.no_grad():
                feats = self.capture(self.model.normalize(x))
        except (RuntimeError, AssertionError) as e:
            # timm's patch embedding asserts the input size of a model that takes only one
            raise InputError(
                f"{self.model.name} cannot take a {th}x{tw} tile ({(str(e).splitlines() or [''])[0][:100]}); "
                "use a larger --tile or size (a model of your own that takes one input size only can declare it "
                "in a fixed_input_size attribute)"
            ) from None
        self.objective.check(Features(feats, self.capture.prefix))

    def _p_target(self) -> str:
        """Where the p-norm pulls: ``auto`` means toward the init image when there is one."""
        if self.cfg.p_target != "auto":
            return self.cfg.p_target
        return "init" if self.from_image else "zero"

    def checkpoint(self) -> dict:
        """The run's state after the last finished step, enough to finish it bit for bit with
        ``run(resume=...)`` on a Render built from the same arguments: the position in the plan,
        the parameterization with its optimizer state, the stepper's state and the random
        generator's state. Tensors are referenced, not copied: save it before the next step."""
        if self.param is None:
            raise RuntimeError("render has not started")
        return {
            "size_index": self.size_index,
            "steps_done": self._steps_done,
            "done": self._done,
            "gen": self.gen.get_state(),
            "param": self.param.state_dict(),
            "stepper": self.stepper.state_dict(),
            "plan": [list(s) for s in self.plan],
            **({"attribution": self.gradient.attribution} if self.gradient.attribution is not None else {}),
        }

    def run(self, callback: Callable[[Progress], None] | None = None, resume: dict | None = None) -> torch.Tensor:
        """Optimize through every size; return the final canvas (N, C, H, W) float (unclipped), of
        :attr:`out_size`.

        ``resume``: a :meth:`checkpoint` dict of a run with the same arguments; the run goes on
        from there and ends with the same canvas, bit for bit, as if never interrupted.
        """
        plan = self.plan
        if self.cfg is not self.cfg_main:  # an earlier run ended in a stage of its own settings
            self._use(self.cfg_main)
        param, first, t0, done = self._start(resume)
        with self.capture:
            for si in range(first, len(plan)):
                if si > first:
                    param, t0 = self._next_size(param, si), 0
                self.param, self.size_index = param, si
                if si == first and not (self.cfg.p_weight > 0 and self._p_target() == "init"):
                    self.init = None  # only the p-norm toward the image needs it later: free it now
                done = self._run_size(param, si, t0, done, callback)
        self.gradient.release()
        if self.out_size != plan[-1]:
            # a resolution-free parameterization: the last size is drawn (one forward pass of
            # the parameters optimized at the smaller sizes), not optimized
            self.param = param.resized(self.out_size)
            self.canvas = self.param.canvas()
        return self._kept(self._with_attribution(self.canvas.detach()))

    def _start(self, resume: dict | None):
        """(the first parameterization, its plan index, the steps done in that size, in all): a
        fresh start, or where the checkpoint ``resume`` stopped."""
        plan = [list(s) for s in self.plan]
        if resume is None:
            # Made before the objective's hooks go in: they stop the forward pass at the
            # objective's deepest layer, and a first stage may read deeper layers of the model.
            param = self.stages.first(self.ctx, self.plan[0], self.init)
            self.stepper.begin_size(param)
            return param, 0, 0, 0
        if plan != resume.get("plan") or "param" not in resume:
            raise InputError(
                f"the checkpoint's size plan {resume.get('plan')} is not this run's {plan}; "
                "resume it with the command that made it"
            )
        first, t0, done = int(resume["size_index"]), int(resume["steps_done"]), int(resume["done"])
        self.gen.set_state(resume["gen"])
        self.gradient.attribution = resume.get("attribution")
        self._enter_stage(first)
        param = restore(self.ctx, self.plan[first], resume["param"])
        self.stepper.load_state_dict(resume.get("stepper", {}))
        return param, first, t0, done

    def _next_size(self, param, si: int):
        """The parameterization at plan index ``si``, from the last one, as the stages say."""
        self._enter_stage(si)
        param = self.stages.next(self.ctx, param, si, len(self.plan), self.plan[si])
        self.stepper.begin_size(param)
        return param

    def _run_size(self, param, si: int, t0: int, done: int, callback) -> int:
        """Steps ``t0``.. of the size at plan index ``si``; returns the steps done in all."""
        cfg, size = self.cfg, self.plan[si]
        self.canvas = param.canvas()
        p_ref = None if self.init is None else resize(self.init, size)
        self.gradient.set_size(size, self.mask)
        grad = torch.zeros_like(self.canvas)
        self._steps_done, self._done = t0, done
        for t in range(t0, cfg.steps):
            score, reg_loss, lr = self._step(param, grad, p_ref, t)
            done += 1
            self._steps_done, self._done = t + 1, done
            if callback is not None:
                n = len(self.plan)
                callback(Progress(done, self.total_steps, si, n, size, t + 1, cfg.steps, score, reg_loss, lr, self))
        return done

    def _step(self, param, grad: torch.Tensor, p_ref: torch.Tensor | None, t: int) -> tuple[float, float, float]:
        """One step at the current size: schedules, a new tile-grid offset and transform seed,
        the stepper's update, the parameterization's after-step work."""
        cfg = self.cfg
        frac = t / max(1, cfg.steps - 1)
        lr = param.set_hyper(lr_at(cfg, t), cfg.scheduled("momentum", frac))
        h, w = grad.shape[-2:]  # the canvas's size
        stride = max(1, min(self.tile, h, w) - self.overlap)
        offset = tuple(int(v) for v in torch.randint(0, stride, (2,), generator=self.gen)) if cfg.shift else (0, 0)
        seed = int(torch.randint(0, 2**62, (1,), generator=self.gen))
        regs = self.terms.regularizers_for(cfg, t, self._p_target(), self.model.mean)
        self.gradient.exact = self.stepper.exact_gradient

        def evaluate(canvas: torch.Tensor, normalize: bool | float):
            self.canvas = canvas
            score, reg = self.gradient(canvas, grad, regs, p_ref, offset, seed, normalize)
            return score, reg, grad

        score, reg_loss = self.stepper.step(param, evaluate)
        param.after_step(StepInfo(t, frac, grad, self.gradient.mask))
        self._canvas_of = param  # the step changed the parameters: the canvas is drawn when read
        return score, reg_loss, lr


def render(
    model: LoadedModel,
    objective: Objective,
    cfg: RenderConfig | None = None,
    init: torch.Tensor | None = None,
    device: torch.device | str = "cpu",
    callback: Callable[[Progress], None] | None = None,
    *,
    stages: Stages | None = None,
    **parts,
) -> torch.Tensor:
    """Run the pipeline once, the keyword way (a notebook's): ``parts`` are the fields of
    :class:`cnnvis.canvas.start.Start` (``size``, ``mask``, ``batch``, ``item_seeds``) and of
    :class:`cnnvis.regularize.terms.Terms` (``transforms``, ``regularizers``, ``penalties``), by
    name; see :class:`Render`. Returns the final canvas (N, C, H, W)."""
    start = {f.name: parts.pop(f.name) for f in dataclasses.fields(Start) if f.name in parts}
    terms = {f.name: parts.pop(f.name) for f in dataclasses.fields(Terms) if f.name in parts}
    if parts:
        raise TypeError(f"render() got unexpected keyword arguments {sorted(parts)}")
    r = Render(
        model, objective, cfg or RenderConfig(), Start(init=init, **start), device, stages=stages, terms=Terms(**terms)
    )
    return r.run(callback)
