"""The stages of a run: which parameterization, under which settings, at each size of the plan.

The loop asks its :class:`Stages` for the sizes it optimizes, the settings and the
parameterization of each, and so knows no kind of stage: a generator prior and its pixel
refinement (:class:`cnnvis.params.generator.GeneratorStages`) are stages like any other.
"""

from __future__ import annotations

import torch

from cnnvis.canvas.sizes import Size
from cnnvis.config import RenderConfig
from cnnvis.params.base import Param, ParamContext, kind_of


def optimized_sizes(plan: list[Size], side: int, min_side: int = 1) -> list[Size]:
    """The sizes of ``plan`` a resolution-free parameterization is optimized at: those whose
    sides fit in ``side`` (one tile), or, when none does, the last size scaled down to fit (its
    shorter side kept at ``min_side`` or more, the model's minimum input)."""
    fit = [s for s in plan if max(s) <= side]
    if fit:
        return fit
    h, w = plan[-1]
    k = min(1.0, max(side / max(h, w), min_side / min(h, w)))
    return [(max(1, round(h * k)), max(1, round(w * k)))]


class Stages:
    """One stage: ``cfg.param``'s kind at every size of the plan, resized between sizes.

    A resolution-free kind (the CPPN) is optimized only at the sizes that fit one tile
    (:func:`optimized_sizes`); the loop then draws the output size from it.
    """

    def first_kind(self, cfg: RenderConfig) -> type[Param]:
        """The class of the run's first parameterization."""
        return kind_of(cfg)

    def check(self, cfg: RenderConfig, start: bool) -> None:
        """Raise :class:`cnnvis.errors.InputError` (one line) before anything runs when the stages
        cannot do the run; ``start``: whether it starts from an image."""
        self.first_kind(cfg).check(cfg, start)

    def sizes(self, cfg: RenderConfig, plan: list[Size], tile: int, min_side: int) -> list[Size]:
        """The sizes optimized, one per stage index, from the size ``plan`` (its last is the
        output size); ``tile`` and ``min_side`` in pixels."""
        if self.first_kind(cfg).resolution_free:
            return optimized_sizes(plan, tile, min_side)
        return list(plan)

    def settings(self, cfg: RenderConfig, index: int, count: int) -> RenderConfig:
        """The settings of the stage at plan index ``index`` of ``count``: the run's ``cfg``."""
        return cfg

    def total_steps(self, cfg: RenderConfig, count: int) -> int:
        """The steps of a run over ``count`` plan sizes."""
        return sum(self.settings(cfg, i, count).steps for i in range(count))

    def context(self, ctx: ParamContext) -> ParamContext:
        """The context every parameterization of the run shares (a stage may add to it)."""
        return ctx

    def first(self, ctx: ParamContext, size: Size, start: torch.Tensor | None) -> Param:
        """The parameterization at plan index 0, drawing ``start`` (N or 1, 3, H, W) or noise."""
        return self.first_kind(ctx.cfg).create(ctx, size, start)

    def next(self, ctx: ParamContext, param: Param, index: int, count: int, size: Size) -> Param:
        """The parameterization at plan index ``index`` of ``count`` after ``param``, under
        ``ctx`` (whose settings are that stage's)."""
        return param.resized(size)
