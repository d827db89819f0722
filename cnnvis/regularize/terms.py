"""The regularization of a run, when the caller chooses it instead of the settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cnnvis.regularize.penalties import regularizers_from_config
from cnnvis.regularize.transforms import Composite, transforms_from_config


@dataclass(frozen=True)
class Terms:
    """Transforms and penalties of a :class:`cnnvis.pipeline.loop.Render`.

    Attributes:
        transforms: the transforms of every tile batch, in order (default ``None``: the settings'
            jitter, zoom and rotation; see :mod:`cnnvis.regularize.transforms`). With ``cfg.alpha`` a
            :class:`Composite` goes first unless the list has one.
        regularizers: the penalties on the whole canvas, e.g. ``[TV(0.1), PNorm(1e-3)]`` (default
            ``None``: the settings' TV and p-norms, stepped as they say, and with ``cfg.alpha`` its
            opacity penalty).
        penalties: more penalties on the whole canvas, added to the regularizers at every step, e.g.
            a video's temporal term (:class:`cnnvis.video.temporal.TemporalPenalty`).
    """

    transforms: Sequence | None = None
    regularizers: Sequence | None = None
    penalties: Sequence = ()

    def transforms_for(self, cfg) -> list:
        """The tile transforms under the settings ``cfg`` (a :class:`cnnvis.config.RenderConfig`)."""
        if self.transforms is None:
            return transforms_from_config(cfg)
        transforms = list(self.transforms)
        if cfg.alpha and not any(isinstance(t, Composite) for t in transforms):
            return [Composite(), *transforms]  # the network sees RGBA composited over backgrounds
        return transforms

    def regularizers_for(self, cfg, step: int, p_target: str, mean: Sequence[float]) -> list:
        """The penalties of ``step`` (0-based, within a size) under ``cfg``, ``penalties`` included."""
        regs = (
            list(self.regularizers)
            if self.regularizers is not None
            else regularizers_from_config(cfg, step, p_target, mean)
        )
        return [*regs, *self.penalties]
