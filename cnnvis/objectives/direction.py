"""Directions in activation space (Olah et al. 2017; lucid's ``direction``, ``direction_neuron``,
``direction_cossim``; captum.optim's ``AngledNeuronDirection``) and caricatures (lucid's
``recipes/caricature``: amplify what a reference image's features already are).

A direction is a vector ``v`` (C,) in a layer's channel space. ``Direction`` maximizes the dot
product of every position's activation vector with ``v``, averaged over positions;
``DirectionNeuron`` does it at one position. With ``cossim_pow > 0`` the dot product is
multiplied by ``max(cos(a, v), 0.1) ** cossim_pow``, which favours pointing along ``v`` over
mere magnitude (lucid's floor of 0.1 keeps the gradient alive where the cosine is negative).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from cnnvis.errors import InputError
from cnnvis.objectives.base import Capture, Objective
from cnnvis.objectives.position import MapPosition

COSSIM_FLOOR = 0.1  # lucid's clip of the cosine in direction_cossim and caricature


def as_direction(name: str, value) -> torch.Tensor | dict[int, float]:
    """A direction vector as float32 (C,): numeric, finite, not all zero. A mapping {channel:
    weight} stays sparse (the layer's width fills it in on use: :func:`dense`)."""
    if isinstance(value, Mapping):
        sparse = {int(c): float(w) for c, w in value.items()}
        if (
            not sparse
            or not all(np.isfinite(w) for w in sparse.values())
            or not any(sparse.values())
            or min(sparse) < 0
        ):
            raise InputError(
                f"direction for layer '{name}' must give finite weights, not all zero, to channels >= 0; got {value}"
            )
        return sparse
    try:
        v = torch.as_tensor(np.asarray(value, dtype=np.float32)).flatten()
    except (TypeError, ValueError):
        raise InputError(f"direction for layer '{name}' is not a numeric array (got {type(value).__name__})") from None
    if v.numel() == 0 or not torch.isfinite(v).all() or not bool(v.abs().sum() > 0):
        raise InputError(f"direction for layer '{name}' must be a finite, non-zero (C,) vector; got {v.numel()} values")
    return v


def dense(v: torch.Tensor | dict[int, float], c: int) -> torch.Tensor:
    """The (c,) vector of a direction (a sparse one: zeros but at its channels)."""
    if isinstance(v, dict):
        out = torch.zeros(c)
        out[list(v)] = torch.tensor(list(v.values()))
        return out
    return v


def _size(v: torch.Tensor | dict[int, float]) -> str:
    return f"channels {sorted(v)}" if isinstance(v, dict) else f"C={v.numel()}"


def _check_length(
    layer: str, v: torch.Tensor | dict[int, float], feats: Mapping[str, torch.Tensor], source: str = ""
) -> None:
    a = feats[layer]
    c = a.shape[1] if a.dim() >= 2 else 0
    if isinstance(v, dict):
        if max(v) >= c:
            raise InputError(
                f"direction names channel {max(v)} but layer '{layer}' has {c} channels; use channels 0..{c - 1}"
            )
        return
    if v.numel() != c:
        where = f" in '{source}'" if source else ""
        raise InputError(
            f"direction{where} has {v.numel()} values but layer '{layer}' has {c} channels; give a ({c},) vector"
        )


def _dot_and_cos(a: torch.Tensor, v: torch.Tensor, cossim_pow: float) -> torch.Tensor:
    """Per position: dot(a, v) times max(cos, floor) ** pow; ``a`` is (B, C, ...), result (B, ...)."""
    v = v.to(a).view(1, -1, *([1] * (a.dim() - 2)))
    dot = (a * v).sum(1)
    if not cossim_pow:
        return dot
    cos = dot / (a.norm(dim=1) * v.norm() + 1e-6)
    return dot * cos.clamp_min(COSSIM_FLOOR) ** cossim_pow


class Direction(Objective):
    """Mean over positions of ``dot(a, v)`` (times the cosine to ``cossim_pow``) at ``layer``.

    Args:
        layer: the layer.
        vector: (C,) direction in the layer's channel space (array, tensor or list), or a
            sparse {channel: weight} mapping.
        cossim_pow: 0 for the plain dot product (lucid ``direction``); e.g. 1 or 2 for
            ``direction_cossim``.
        source: where the vector came from (a file name), for error messages.
    """

    def __init__(self, layer: str, vector, cossim_pow: float = 0.0, source: str = ""):
        self.layer, self.vector, self.cossim_pow, self.source = (
            layer,
            as_direction(layer, vector),
            float(cossim_pow),
            source,
        )
        self.layers = (layer,)

    def check(self, feats) -> None:
        _check_length(self.layer, self.vector, feats, self.source)

    def score(self, cap: Capture) -> torch.Tensor:
        a = cap.feats[self.layer]
        s = _dot_and_cos(a, dense(self.vector, a.shape[1]), self.cossim_pow)
        return s.flatten(1).mean(1) if s.dim() > 1 else s

    def __repr__(self) -> str:
        return f"Direction({self.layer!r}, {_size(self.vector)}, cossim_pow={self.cossim_pow:g})"


class DirectionNeuron(Direction):
    """``dot(a, v)`` at one position (``x``, ``y``) of the feature map, default its centre
    (lucid ``direction_neuron``)."""

    def __init__(
        self,
        layer: str,
        vector,
        x: int | None = None,
        y: int | None = None,
        cossim_pow: float = 0.0,
        source: str = "",
        grid: tuple[int, int] | None = None,
    ):
        super().__init__(layer, vector, cossim_pow, source)
        self.x, self.y = x, y
        self.position = MapPosition(x, y, None if grid is None else tuple(grid))

    def _pos(self, a: torch.Tensor) -> tuple[int, int]:
        return self.position.at(*a.shape[-2:])

    def check(self, feats) -> None:
        super().check(feats)
        a = feats[self.layer]
        if a.dim() != 4:
            raise InputError(
                f"layer '{self.layer}' has output shape {tuple(a.shape)}; "
                "a direction at one position needs a (B, C, H, W) map"
            )
        self.position.check(self.layer, *a.shape[-2:], what="position")

    def score(self, cap: Capture) -> torch.Tensor:
        a = cap.feats[self.layer]
        y, x = self._pos(a)
        return (
            _dot_and_cos(a[:, :, y : y + 1, x : x + 1], dense(self.vector, a.shape[1]), self.cossim_pow)
            .flatten(1)
            .mean(1)
        )

    def __repr__(self) -> str:
        return f"DirectionNeuron({self.layer!r}, {_size(self.vector)}, x={self.x}, y={self.y})"


class Caricature(Objective):
    """Amplify what a reference image's features are (lucid's caricature): per position, the dot
    product of the tile's activation with the reference's over the same window, times their
    cosine (floored at 0.1) to ``cossim_pow``; summed over positions.

    Args:
        layer: the layer.
        reference: (1 or N, 3, H, W) in [0, 1]; its activations come window by window, under
            the same transforms, like :class:`cnnvis.objectives.inversion.Invert`'s.
        cossim_pow: 1 by default (lucid's recipe), 0 for the plain dot product.
    """

    def __init__(self, layer: str, reference: torch.Tensor, cossim_pow: float = 1.0):
        if reference is None or reference.dim() != 4 or reference.shape[1] != 3:
            raise InputError("a caricature needs a reference image (1, 3, H, W); pass --reference IMAGE")
        self.layer, self.reference, self.cossim_pow = layer, reference, float(cossim_pow)
        self.layers = (layer,)

    def score(self, cap: Capture) -> torch.Tensor:
        a, t = cap.feats[self.layer], cap.targets_of(self.reference)[self.layer]
        dot = (a * t).sum(1)
        if self.cossim_pow:
            cos = dot / (a.norm(dim=1) * t.norm(dim=1) + 1e-6)
            dot = dot * cos.clamp_min(COSSIM_FLOOR) ** self.cossim_pow
        return dot.flatten(1).sum(1) if dot.dim() > 1 else dot

    def __repr__(self) -> str:
        return f"Caricature({self.layer!r}, cossim_pow={self.cossim_pow:g})"
