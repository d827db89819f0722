"""A deep generator network's latent as the parameterization (Nguyen et al. 2016; Shen et al. 2019).

The images are ``fit(G(z))`` (:class:`cnnvis.priors.dgn.GeneratorImage`) and ``z`` is optimized.
After every step ``z`` is clipped to its bounds (icnn). Up to the prior's side limit the latent
is resized with the canvas; above it the run hands over to ``cfg.param``'s parameterization
started from the generator's image, a tiled refinement whose memory is bounded by a tile
(the design is explained in :mod:`cnnvis.priors.dgn`).
"""

from __future__ import annotations

import torch

from cnnvis.canvas.sizes import Size
from cnnvis.params.base import PARAM_KINDS, Param, ParamContext, StepInfo, register
from cnnvis.priors.dgn import GeneratorImage, initial_latent


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
    def check(cls, cfg, start: bool, prior) -> None:
        super().check(cfg, start, prior)
        PARAM_KINDS[cfg.param].check(cfg, True, None)  # past the prior's sizes: cfg.param, from the generator's image

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

    def parameters(self) -> list[torch.Tensor]:
        return self.image.parameters()

    def after_step(self, info: StepInfo) -> None:
        self.image.project_()  # latent bounds (icnn): after every step, L-BFGS's too

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
