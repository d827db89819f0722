"""What every objective is: a score per tile, composable with ``+``, ``-`` and scalar ``*``.

An objective maps a :class:`Capture` (one batch of tiles, from any of the N images being
rendered together, with their activations) to one score per tile, shape (B,). The pipeline
maximizes the sum. Objectives combine like numbers::

    obj = Dream("blocks.4.2") + 0.5 * Channel("blocks.5.0", 17).on(1) - Invert(reference=img)

Each objective declares the layers it reads (``layers``) so the pipeline hooks only those, and
the reference images it compares against (``references``) so the pipeline can compute the
reference's activations over each tile's window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from cnnvis.canvas.tiling import Window


class Features(dict):
    """Layer -> activations (B, C, h, w) or (B, C), as :class:`cnnvis.models.capture.FeatureCapture`
    returns them, with the prefix tokens of token layers: ``prefix`` layer -> (B, P, C)."""

    def __init__(self, feats: Mapping[str, torch.Tensor], prefix: Mapping[str, torch.Tensor] | None = None):
        super().__init__(feats)
        self.prefix = dict(prefix or {})


def prefix_of(feats: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    """The prefix tokens that come with ``feats`` (empty for a plain dict)."""
    return getattr(feats, "prefix", {})


@dataclass(frozen=True)
class Capture:
    """All an objective sees for one batch of tiles.

    Attributes:
        image: the tiles, (B, C, h, w) in [0, 1] before normalization: RGB, or RGBA (C = 4)
            with ``cfg.alpha``, before the composite over random backgrounds.
        feats: dotted layer name -> activations (B, C, h', w').
        windows: where each tile lies on its canvas, length B.
        canvas: (H, W) of the current size, pixels.
        targets: reference activations over the same windows, under the same transforms,
            detached: ``{id(reference image): {layer: (B, C, h', w')}}``; read them with
            :meth:`targets_of`. ``None`` when no objective has a reference.
        items: (B,) int64, which of the N images each tile belongs to; ``None`` means all 0.
        batch: N, the number of images rendered together.
        prefix: the prefix tokens (class, distillation, register) of token layers that have
            some: layer -> (B, P, C) (see :mod:`cnnvis.models.layouts`).
    """

    image: torch.Tensor
    feats: Mapping[str, torch.Tensor]
    windows: Sequence[Window]
    canvas: tuple[int, int]
    targets: Mapping[int, Mapping[str, torch.Tensor]] | None = None
    items: torch.Tensor | None = None
    batch: int = 1
    prefix: Mapping[str, torch.Tensor] = field(default_factory=dict)

    def item_index(self) -> torch.Tensor:
        """(B,) int64 image index of every tile."""
        if self.items is not None:
            return self.items
        return torch.zeros(self.image.shape[0], dtype=torch.long, device=self.image.device)

    def targets_of(self, reference: torch.Tensor) -> Mapping[str, torch.Tensor]:
        """The activations of ``reference`` (an objective's reference image) over these tiles."""
        if self.targets is None or id(reference) not in self.targets:
            raise RuntimeError(
                "this objective compares against a reference image: "
                "the pipeline must supply its activations (Capture.targets)"
            )
        return self.targets[id(reference)]


class Objective:
    """Base class: subclasses implement ``score(cap) -> Tensor (B,)`` and set ``layers``.

    ``check(feats)`` validates indices against real activation shapes (one probe pass before
    the run) and raises :class:`cnnvis.errors.InputError`; it never changes the objective.
    """

    layers: tuple[str, ...] = ()

    @property
    def references(self) -> tuple[torch.Tensor, ...]:
        """Reference images (1 or N, 3, H, W) in [0, 1] whose activations this objective reads."""
        ref = getattr(self, "reference", None)
        return () if ref is None else (ref,)

    def score(self, cap: Capture) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, cap: Capture) -> torch.Tensor:
        return self.score(cap)

    def check(self, feats: Mapping[str, torch.Tensor]) -> None:
        """Validate against real activations (B, ...) of every layer in ``layers``."""

    def on(self, item: int) -> Objective:
        """This objective on image ``item`` of the batch only (0 on the other images' tiles)."""
        return OnItem(self, item)

    def __add__(self, other: Objective) -> Objective:
        return Sum([(1.0, self), (1.0, as_objective(other))])

    def __sub__(self, other: Objective) -> Objective:
        return Sum([(1.0, self), (-1.0, as_objective(other))])

    def __mul__(self, k: float) -> Objective:
        return Sum([(float(k), self)])

    __rmul__ = __mul__

    def __neg__(self) -> Objective:
        return Sum([(-1.0, self)])


def as_objective(x) -> Objective:
    if not isinstance(x, Objective):
        raise TypeError(f"expected an Objective, got {type(x).__name__}")
    return x


class Sum(Objective):
    """Weighted sum of objectives; nested sums are flattened. Its layers and references are
    those of all its terms."""

    def __init__(self, terms: Sequence[tuple[float, Objective]]):
        flat: list[tuple[float, Objective]] = []
        for w, obj in terms:
            if isinstance(obj, Sum):
                flat.extend((w * w2, o2) for w2, o2 in obj.terms)
            else:
                flat.append((w, obj))
        self.terms = flat
        self.layers = tuple(dict.fromkeys(layer for _, o in flat for layer in o.layers))

    @property
    def references(self) -> tuple[torch.Tensor, ...]:
        seen: dict[int, torch.Tensor] = {}
        for _, o in self.terms:
            for r in o.references:
                seen.setdefault(id(r), r)
        return tuple(seen.values())

    def score(self, cap: Capture) -> torch.Tensor:
        return sum(w * o.score(cap) for w, o in self.terms)

    def check(self, feats) -> None:
        for _, o in self.terms:
            o.check(feats)

    def __repr__(self) -> str:
        return " + ".join(f"{w:g}*{o!r}" for w, o in self.terms)


class OnItem(Objective):
    """``objective`` scored on the tiles of batch image ``item`` only: how one batch renders a
    different unit on each image (channel 5 on image 0, channel 6 on image 1, ...)."""

    def __init__(self, objective: Objective, item: int):
        if item < 0:
            raise ValueError(f"batch item must be >= 0, got {item}")
        self.objective, self.item = objective, int(item)
        self.layers = objective.layers

    @property
    def references(self) -> tuple[torch.Tensor, ...]:
        return self.objective.references

    def check(self, feats) -> None:
        self.objective.check(feats)

    def score(self, cap: Capture) -> torch.Tensor:
        s = self.objective.score(cap)
        return torch.where(cap.item_index() == self.item, s, torch.zeros_like(s))

    def __repr__(self) -> str:
        return f"{self.objective!r}.on({self.item})"
