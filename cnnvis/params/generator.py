"""A deep generator network's latent as the parameterization (Nguyen et al. 2016; Shen et al. 2019).

The images are ``fit(G(z))`` (:class:`cnnvis.priors.dgn.GeneratorImage`) and ``z`` is optimized.
After every step ``z`` is clipped to its bounds (icnn). Up to the prior's side limit the latent
is resized with the canvas; above it the run hands over to ``cfg.param``'s parameterization
started from the generator's image, a tiled refinement whose memory is bounded by a tile
(the design is explained in :mod:`cnnvis.priors.dgn`). :class:`GeneratorStages` puts the latent
first in a run, and optionally one more stage of pixel refinement at the last size.
"""

from __future__ import annotations

import dataclasses

import torch

from cnnvis.canvas.sizes import Size
from cnnvis.config import RenderConfig
from cnnvis.errors import InputError
from cnnvis.params.base import PARAM_KINDS, Param, ParamContext, StepInfo, kind_of, register
from cnnvis.params.stages import Stages
from cnnvis.priors.dgn import DGNPrior, GeneratorImage, initial_latent


@register("generator", choice=False)
class GeneratorParam(Param):
    """The latent (N, *latent_shape) of ``ctx.prior``'s generator."""

    def __init__(self, ctx: ParamContext, image: GeneratorImage):
        self.ctx, self.image = ctx, image
        self.size = image.size
        # A new latent per size (its shape may change): its optimizer starts afresh.
        self.optimizer = ctx.optimizer(image.parameters())
        cfg = ctx.cfg
        # the latent has its own units; the lr schedule's shape stays
        self.lr_factor = cfg.latent_lr / cfg.lr if cfg.latent_lr is not None else 1.0

    @classmethod
    def check_settings(cls, cfg) -> None:
        """The settings are ``cfg.param``'s: :meth:`check` has that kind check them."""

    @classmethod
    def check(cls, cfg, start: bool) -> None:
        if cfg.alpha:
            raise InputError(
                "--alpha makes an RGBA image, which a generator prior cannot draw; drop --alpha or --prior dgn"
            )
        super().check(cfg, start)
        kind_of(cfg).check(cfg, True)  # past the prior's sizes: cfg.param, from the generator's image

    @classmethod
    def create(cls, ctx: ParamContext, size: Size, start: torch.Tensor | None) -> GeneratorParam:
        """The latent encoding ``start`` or drawn as ``ctx.prior.init`` says. The encoding reads
        the model: call this before the objective's hooks cut the forward pass short."""
        z = initial_latent(ctx.prior, size, ctx.model, start, ctx.item_gens or ctx.gen, ctx.device, ctx.batch)
        return cls(ctx, GeneratorImage(ctx.prior, size, z))

    @property
    def z(self) -> torch.Tensor:
        return self.image.z

    def images(self) -> torch.Tensor:
        return self.image.image()

    def _keeps_graph(self) -> bool:
        return True  # a generator's draw costs about a tile pass: it is never drawn twice

    def parameters(self) -> list[torch.Tensor]:
        return self.image.parameters()

    def after_step(self, info: StepInfo) -> None:
        self.image.project_()  # latent bounds (icnn): after every step, L-BFGS's too

    def latent(self) -> torch.Tensor:
        return self.image.z.detach().clone()

    def resized(self, size: Size) -> Param:
        if max(size) <= self.ctx.prior.side_limit():
            return GeneratorParam(self.ctx, self.image.resized(size))
        # Past the generator's sizes: refine its image with the configured parameterization.
        return PARAM_KINDS[self.ctx.cfg.param].create(self.ctx, size, self.canvas())

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"z": self.image.z.detach()}

    @classmethod
    def from_tensors(cls, ctx: ParamContext, size: Size, tensors: dict[str, torch.Tensor]) -> GeneratorParam:
        return cls(ctx, GeneratorImage(ctx.prior, size, tensors["z"]))


@dataclasses.dataclass(frozen=True)
class GeneratorStages(Stages):
    """A generator prior's stages: its latent at the sizes up to ``prior.side_limit()``, then
    ``cfg.param`` from its image (:meth:`GeneratorParam.resized`); with ``refine``, one more
    stage at the last size that optimizes ``refine.param`` started from the image so far, for
    ``refine.steps`` steps under ``refine``'s optimizer and regularizers.

    The generator draws the composition that deep features leave open; the pixels then add what
    it cannot draw (a generator trained on a few photos reconstructs unseen ones at a pixel
    correlation of about 0.75, below what shallow features pin down).

    Attributes:
        prior: the :class:`cnnvis.priors.dgn.DGNPrior`.
        refine: the refinement stage's settings, or ``None`` for none.
    """

    prior: DGNPrior
    refine: RenderConfig | None = None

    def first_kind(self, cfg: RenderConfig) -> type[Param]:
        return GeneratorParam

    def check(self, cfg: RenderConfig, start: bool) -> None:
        super().check(cfg, start)
        if self.refine is not None:
            kind_of(self.refine).check(self.refine, True)

    def sizes(self, cfg: RenderConfig, plan: list[Size], tile: int, min_side: int) -> list[Size]:
        plan = super().sizes(cfg, plan, tile, min_side)
        return plan if self.refine is None else [*plan, plan[-1]]

    def _refines(self, index: int, count: int) -> bool:
        return self.refine is not None and index == count - 1

    def settings(self, cfg: RenderConfig, index: int, count: int) -> RenderConfig:
        return self.refine if self._refines(index, count) else cfg

    def context(self, ctx: ParamContext) -> ParamContext:
        self.prior.generator.to(ctx.device)
        return dataclasses.replace(ctx, prior=self.prior)

    def next(self, ctx: ParamContext, param: Param, index: int, count: int, size: Size) -> Param:
        if self._refines(index, count):
            return kind_of(ctx.cfg).create(ctx, size, param.canvas())
        return param.resized(size)
