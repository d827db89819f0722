"""The parameterization protocol: what the optimizer changes, and the images it draws.

A parameterization owns its tensors and their torch optimizer. The render loop only calls:

- :meth:`Param.draw` for the canvas of one evaluation, (N, C, H, W) (C = 3, RGB, or 4, RGBA
  with ``cfg.alpha``), and
  :meth:`Param.apply_gradient` with d(loss)/d(canvas) of that evaluation;
- :meth:`Param.prepare_evaluation` before each evaluation (L-BFGS's projected line search);
- :meth:`Param.after_step` after each optimizer step (icnn's pixel operations, latent bounds);
- :meth:`Param.resized` between sizes (optimizer-relevant state carried where it has a meaning);
- :meth:`Param.state_dict` / :func:`restore` for checkpoints that resume bit for bit.

Adding a parameterization is one new module that subclasses :class:`Param`, decorates it with
:func:`register` and is imported before the run (:mod:`cnnvis.params` imports the shipped ones).
The module declares everything known about its kind, and no other module names it:

- its name, ``--param NAME`` (:func:`register`);
- its canvas-sized buffers, for the memory pre-flight (:meth:`Param.canvas_buffers`);
- which settings it accepts (:attr:`Param.accepts_pixel_ops`, :attr:`Param.accepts_shared`, and
  any further check in :meth:`Param.check_settings`);
- its tuned settings (:attr:`Param.tuned`);
- :attr:`Param.resolution_free` when its images at any size come from the same parameters (the
  CPPN): the loop then optimizes it only at sizes that fit one tile and renders larger sizes
  without optimizing.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from cnnvis.canvas.sizes import Size
from cnnvis.config import PARAMS, PIXEL_OPS, SETTINGS, RenderConfig
from cnnvis.errors import InputError
from cnnvis.params.optim import make_optimizer, set_hyper

# Images of more pixels than this are drawn without a graph and drawn again for the gradient (Param.draw): the
# parameterization's canvas-sized intermediates then never sit beside the tiles' activations. At 4096x4096 MACO's
# held about 1 GB (bench/RESULTS.md, issue 21); drawing twice costs one more irfft, 1-2 % of a step at 2048x2048.
KEEP_GRAPH_PIXELS = 1024 * 1024


def keeps_graph(size: Size) -> bool:
    """Whether a draw of an (H, W) canvas keeps autograd's graph for its gradient (see :meth:`Param.draw`)."""
    return size[0] * size[1] <= KEEP_GRAPH_PIXELS


# Every kind by its name, the ``--param`` choices and the kinds only a run hands over to (the
# generator's latent, the decorrelated pixel canvas), for checkpoints. The ``--param`` choices
# alone: cnnvis.config.PARAMS.
PARAM_KINDS: dict[str, type[Param]] = {}


def register(kind: str, *, choice: bool = True) -> Callable[[type[Param]], type[Param]]:
    """Class decorator: make a parameterization available under ``kind``: as ``--param KIND``
    when ``choice``, else only to the run that hands over to it and to checkpoints."""

    def deco(cls: type[Param]) -> type[Param]:
        cls.kind = kind
        PARAM_KINDS[kind] = cls
        if choice:
            PARAMS.add(kind, cls)
        return cls

    return deco


def unregister(kind: str) -> None:
    """Forget the parameterization ``kind`` (a plugin unloaded, a test's kind)."""
    PARAM_KINDS.pop(kind, None)
    PARAMS.remove(kind)


def _accepting(attr: str) -> str:
    """``pixel`` or ``pixel or lowres``: the --param choices whose class sets ``attr``."""
    return " or ".join(name for name, cls in PARAMS.registered().items() if getattr(cls, attr))


@dataclass(frozen=True)
class StepInfo:
    """What a parameterization may use after an optimizer step.

    Attributes:
        step: 0-based step within the current size.
        frac: ``step / (steps - 1)``, the position in the size's schedules, in [0, 1].
        grad: (N, C, H, W) d(loss)/d(canvas) of the step's last evaluation (loss = -score +
            regularizers, the quantity minimized).
        mask: (1, 1, H, W) image mask in [0, 1] (only masked pixels change), or ``None``.
    """

    step: int
    frac: float
    grad: torch.Tensor
    mask: torch.Tensor | None = None


@dataclass
class ParamContext:
    """What every parameterization of one run shares, whatever the size.

    Attributes:
        cfg: the run's settings.
        device: where the parameters live.
        gen: the run's seeded generator (noise starts draw from it, in a fixed order).
        mean: the model's mean colour, RGB in [0, 1] (noise is centred on it; pixel ops reset to it).
        batch: N, the number of images rendered together.
        model: the :class:`cnnvis.models.registry.LoadedModel` (a generator prior encodes with it).
        prior: a :class:`cnnvis.priors.dgn.DGNPrior`, or ``None``.
        item_gens: optional per-image generators for noise starts, so that image i's start does
            not depend on which other images share its batch (atlases); ``None``: ``gen``.
    """

    cfg: RenderConfig
    device: torch.device
    gen: torch.Generator
    mean: tuple[float, float, float]
    batch: int = 1
    model: Any = None
    prior: Any = None
    item_gens: Sequence[torch.Generator] | None = None

    def optimizer(self, params: Sequence[torch.Tensor]) -> torch.optim.Optimizer:
        return make_optimizer(params, self.cfg)


class Param(ABC):
    """Parameters -> images (N, C, H, W) in [0, 1] (pixels may leave that range until output);
    C = 3 (RGB), or 4 (RGBA, alpha last) with ``cfg.alpha``.

    Attributes:
        ctx: the run's :class:`ParamContext`.
        size: (H, W) of the images, pixels.
        optimizer: the torch optimizer over :meth:`parameters`.
        lr_factor: the learning rate of this parameterization relative to ``cfg.lr`` (a
            generator's latent has its own units).
        resolution_free: the images at any size come from the same parameters, so a size
            larger than a tile is rendered from the parameters optimized at smaller sizes,
            not optimized itself (:class:`cnnvis.params.stages.Stages`).
    """

    kind: ClassVar[str] = ""
    resolution_free: ClassVar[bool] = False
    # icnn's pixel operations (cnnvis.config.PIXEL_OPS) edit the images in place
    accepts_pixel_ops: ClassVar[bool] = False
    # --shared: low-resolution terms added to every image of the batch before its colour map
    accepts_shared: ClassVar[bool] = False
    # situation -> the settings measured best for this kind there (cnnvis.defaults): "prefer"
    # (cnnvis prefer), "invert_deep" (cnnvis invert at layers of stride >= DEEP_STRIDE)
    tuned: ClassVar[Mapping[str, Mapping[str, object]]] = {}
    ctx: ParamContext
    size: Size
    optimizer: torch.optim.Optimizer
    lr_factor: float = 1.0
    _drawn: torch.Tensor | None = None

    @classmethod
    def check(cls, cfg: RenderConfig, start: bool) -> None:
        """Raise :class:`InputError` (one line) before anything runs when this kind cannot do the
        run: ``start`` whether it starts from an image (or another stage's image)."""
        cls.check_settings(cfg)

    @classmethod
    def check_settings(cls, cfg: RenderConfig) -> None:
        """Raise :class:`InputError` (one line) when ``cfg`` asks of this kind what it does not do.
        :class:`RenderConfig` calls it when it is built with ``--param`` this kind, and
        :meth:`check` when a run starts. A kind with further needs extends it."""
        if not cls.accepts_pixel_ops:
            for name in PIXEL_OPS:
                if getattr(cfg, name):
                    raise InputError(
                        f"{SETTINGS[name].flag} edits pixels in place and needs "
                        f"--param {_accepting('accepts_pixel_ops')}, not --param {cfg.param}"
                    )
        if cfg.shared and not cls.accepts_shared:
            raise InputError(
                "--shared adds low-resolution terms to the Fourier image; "
                f"use --param {_accepting('accepts_shared')}, or drop --shared (got --param {cfg.param})"
            )

    @classmethod
    def canvas_buffers(cls, cfg: RenderConfig) -> float:
        """Canvas-sized (N, C, H, W) float32 buffers this kind holds beyond the canvas, its
        gradient and the optimizer's state (:mod:`cnnvis.pipeline.memory`): 0 by default."""
        return 0

    @classmethod
    @abstractmethod
    def create(cls, ctx: ParamContext, size: Size, start: torch.Tensor | None) -> Param:
        """A new parameterization at ``size`` drawing ``start`` (N or 1, 3 or 4, H', W') resized,
        or a seeded noise start when ``start`` is ``None``."""

    @abstractmethod
    def images(self) -> torch.Tensor:
        """(N, C, H, W), differentiable with respect to :meth:`parameters`."""

    @abstractmethod
    def parameters(self) -> list[torch.Tensor]:
        """The tensors the optimizer changes."""

    @abstractmethod
    def resized(self, size: Size) -> Param:
        """This parameterization at ``size`` (it may hand over to another kind)."""

    @abstractmethod
    def tensors(self) -> dict[str, torch.Tensor]:
        """The tensors that define the state (for checkpoints), detached."""

    @classmethod
    @abstractmethod
    def from_tensors(cls, ctx: ParamContext, size: Size, tensors: dict[str, torch.Tensor]) -> Param:
        """The inverse of :meth:`tensors` (a fresh optimizer; :func:`restore` loads its state)."""

    # ------------------------------------------------------------------ stepping
    def canvas(self) -> torch.Tensor:
        """The current images (N, C, H, W), detached."""
        with torch.no_grad():
            return self.images().detach()

    def draw(self) -> torch.Tensor:
        """The canvas of one evaluation, detached. Up to :data:`KEEP_GRAPH_PIXELS` pixels the graph to the
        parameters is kept for :meth:`apply_gradient`; above, the images are drawn without one and drawn again for
        the gradient (the parameterization's canvas-sized intermediates, a Fourier image's spectrum, irfft, colour
        map and sigmoid, would otherwise be held through every tile pass of the evaluation)."""
        if self._keeps_graph():
            self._drawn = self.images()
            return self._drawn.detach()
        self._drawn = None
        return self.canvas()

    def apply_gradient(self, grad: torch.Tensor) -> None:
        """Set the parameters' ``.grad`` from ``grad`` = d(loss)/d(canvas) of the last draw."""
        self.optimizer.zero_grad()
        drawn = self._drawn if self._drawn is not None else self.images()  # the same images: the parameters are
        drawn.backward(grad)  # unchanged since draw()
        self._drawn = None

    def _keeps_graph(self) -> bool:
        """Whether :meth:`draw` keeps the graph: by canvas size here; a kind may decide otherwise (the CPPN by its
        bands, a generator always)."""
        size = getattr(self, "size", None)
        return size is None or keeps_graph(size)

    def clear_gradient(self) -> None:
        """Drop the parameters' gradients after a step (they may alias the loop's buffer)."""

    def set_hyper(self, lr: float, momentum: float | None) -> float:
        """Set the step's learning rate (times :attr:`lr_factor`) and momentum (a heavy-ball
        optimizer's); return the lr used."""
        lr = lr * self.lr_factor
        set_hyper(self.optimizer, self.ctx.cfg, lr, momentum)
        return lr

    def prepare_evaluation(self) -> None:
        """Called before every evaluation of a step (L-BFGS evaluates several times)."""

    def after_step(self, info: StepInfo) -> None:
        """Called after every optimizer step."""

    def latent(self) -> torch.Tensor | None:
        """A generator's latent (N, *shape), a detached copy, for a kind that has one; else ``None``."""
        return None

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """Everything needed to go on bit for bit: the kind, the tensors and the optimizer state.
        Tensors are referenced, not copied."""
        return {"kind": self.kind, "tensors": self.tensors(), "opt": self.optimizer.state_dict()}


def restore(ctx: ParamContext, size: Size, state: dict) -> Param:
    """The parameterization saved by :meth:`Param.state_dict`, at ``size``."""
    kind = state.get("kind") if isinstance(state, dict) else None
    if kind not in PARAM_KINDS:
        raise InputError(
            f"the checkpoint holds a parameterization of kind {kind!r}, which this cnnvis does not know; "
            "resume it with the cnnvis that wrote it"
        )
    param = PARAM_KINDS[kind].from_tensors(ctx, size, {k: v.to(ctx.device) for k, v in state["tensors"].items()})
    # a copy: torch's load_state_dict keeps the given tensors, and the saved state must not move
    param.optimizer.load_state_dict(copy.deepcopy(state["opt"]))
    return param


def kind_of(cfg: RenderConfig) -> type[Param]:
    """The class of ``cfg.param``'s kind."""
    kind = cfg.param
    if kind not in PARAM_KINDS:
        raise InputError(f"unknown --param '{kind}'; use one of {', '.join(PARAMS.registered())}")
    return PARAM_KINDS[kind]


def create(ctx: ParamContext, size: Size, start: torch.Tensor | None) -> Param:
    """A new parameterization of ``ctx.cfg.param``'s kind (see :meth:`Param.create`)."""
    return kind_of(ctx.cfg).create(ctx, size, start)
