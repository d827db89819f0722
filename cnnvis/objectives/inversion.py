"""Objectives for feature inversion (icnn) and preferred images of masked units (cnnpref).

``Invert`` scores a tile by minus the weighted distance between its activations and target
activations (Mahendran & Vedaldi 2015; Shen et al. 2019). Targets are either fixed arrays (for
example features decoded from brain activity) or taken from a reference image, window by
window, so that inversion works at any size through the tiled pipeline.

``MaskedUnits`` scores the masked sum of one layer's activations: cnnpref's preferred image of
a unit, a channel, or any weighted set of units.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch

from cnnvis.errors import InputError
from cnnvis.models.layer_table import check_channel
from cnnvis.objectives.base import Capture, Objective
from cnnvis.objectives.losses import LOSSES, feature_loss, target_norm, target_norms


def as_feature(name: str, value) -> torch.Tensor:
    """A target feature as float32 (1, *shape); checks it is numeric and finite."""
    try:
        t = torch.as_tensor(np.asarray(value), dtype=torch.float32)
    except (TypeError, ValueError):
        raise InputError(f"features for layer '{name}' are not a numeric array (got {type(value).__name__})") from None
    if t.dim() == 0:
        raise InputError(f"features for layer '{name}' are a scalar; give the layer's activation array")
    if not torch.isfinite(t).all():
        n = int((~torch.isfinite(t)).sum())
        raise InputError(f"features for layer '{name}' contain {n} NaN or Inf values; clean them before inverting")
    return t[None] if t.dim() in (1, 3) else t


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape[1:]) + ")"


def expand_mask(name: str, mask, feat_shape: Sequence[int]) -> torch.Tensor:
    """A feature mask as (1, *feat_shape)-broadcastable float32.

    ``feat_shape`` is the layer's activation shape without the batch axis: (C, H, W) or (N,).
    Accepted masks: the full shape; (H, W), applied to every channel; (C,), one weight per
    channel. Anything else is an InputError naming expected and given shapes.
    """
    m = torch.as_tensor(np.asarray(mask), dtype=torch.float32)
    fs = tuple(feat_shape)
    if tuple(m.shape) == fs:
        return m[None]
    if m.shape[0:1] == (1,) and tuple(m.shape[1:]) == fs:
        return m
    if len(fs) == 3 and tuple(m.shape) == fs[1:]:
        return m[None, None]
    if len(fs) == 3 and tuple(m.shape) == fs[:1]:
        return m.view(1, -1, 1, 1)
    alts = [fs] + ([fs[1:], fs[:1]] if len(fs) == 3 else [])
    raise InputError(
        f"mask for layer '{name}' has shape {tuple(m.shape)} but the layer's features are {fs}; "
        f"give one of shapes {', '.join(str(a) for a in alts)}"
    )


def channel_mask(name: str, channels: Sequence[int], feat_shape: Sequence[int]) -> torch.Tensor:
    """A (C,)-mask from a channel list, checked against the layer's C channels."""
    c = feat_shape[0]
    m = torch.zeros(c)
    for ch in channels:
        check_channel(int(ch), c, f"layer '{name}'")
        m[int(ch)] = 1
    return expand_mask(name, m, feat_shape)


class Invert(Objective):
    """Minus the weighted feature loss: ``-sum_l w_l * loss(f_l, t_l; mask_l)`` per tile.

    Args:
        targets: layer -> target activations, (C, H, W), (1, C, H, W) or (N,). Compared with
            every tile's activations, so the tile must give the same shape.
        reference: instead of ``targets``, an image (1, 3, H, W) in [0, 1] whose activations over
            each tile's window are the targets (the pipeline computes them, see ``Capture.targets``).
        layers: the layers to match (needed with ``reference``; default: the keys of ``targets``).
        loss: one of l2, l1, inner, gram, corr (see :mod:`cnnvis.objectives.losses`).
        weights: layer -> weight. Default (icnn): ``1 / ||t_l||^2`` of what is compared,
            normalized to sum to one, so each layer counts as a relative error; with a reference
            this is computed per tile.
        masks: layer -> mask of the features (full shape, (H, W) or (C,)).
        channels: layer -> channel indices to match (the others are ignored).
    """

    def __init__(
        self,
        targets: Mapping[str, object] | None = None,
        *,
        reference: torch.Tensor | None = None,
        layers: Sequence[str] | None = None,
        loss: str = "l2",
        weights: Mapping[str, float] | None = None,
        masks: Mapping[str, object] | None = None,
        channels: Mapping[str, Sequence[int]] | None = None,
    ):
        if loss not in LOSSES:
            raise InputError(f"unknown loss '{loss}'; use one of {', '.join(LOSSES)}")
        if (targets is None) == (reference is None):
            raise InputError("give either target features or a reference image to invert, not both or neither")
        self.loss = loss
        self.targets = None if targets is None else {k: as_feature(k, v) for k, v in targets.items()}
        self.reference = reference
        self.layers = self._layer_names(layers)
        self._raw_masks = dict(masks or {})
        self._channels = dict(channels or {})
        self._check_inverted("a mask or channel list", [*self._raw_masks, *self._channels])
        self._mask_cache: dict[tuple[str, tuple[int, ...]], torch.Tensor | None] = {}
        self.user_weights = None if weights is None else {k: float(weights[k]) for k in weights}
        self._check_inverted("a weight", self.user_weights or ())
        self.weights = self.user_weights
        if self.weights is None and self.targets is not None:
            self.weights = self._default_weights({k: self.targets[k] for k in self.layers})

    def _layer_names(self, layers: Sequence[str] | None) -> tuple[str, ...]:
        """The layers to match, in order without repeats: ``layers``, else the targets' keys;
        each must have target features when they are fixed."""
        names = tuple(dict.fromkeys(list(layers) if layers else list(self.targets or ())))
        if not names:
            raise InputError("no layer to invert; name at least one layer")
        missing = [n for n in names if self.targets is not None and n not in self.targets]
        if missing:
            raise InputError(
                f"no target features for layer '{missing[0]}'; the features cover {', '.join(self.targets)}"
            )
        return names

    def _check_inverted(self, what: str, names: Iterable[str]) -> None:
        """InputError for the first of ``names`` (the layers ``what`` is given for) not inverted."""
        unknown = [k for k in names if k not in self.layers]
        if unknown:
            raise InputError(
                f"{what} names layer '{unknown[0]}', which is not inverted; inverted layers: {', '.join(self.layers)}"
            )

    @property
    def masks(self) -> dict[str, torch.Tensor]:
        """layer -> feature mask of the target shape (fixed targets only; else see :meth:`mask_for`)."""
        if self.targets is None:
            return {}
        return {k: m for k in self.layers if (m := self.mask_for(k, tuple(self.targets[k].shape[1:]))) is not None}

    def mask_for(self, layer: str, feat_shape: tuple[int, ...]) -> torch.Tensor | None:
        """The mask of ``layer``'s features of shape ``feat_shape`` (C, H, W): the user's mask times
        the channel selection, or None. Built once per shape (a pure function of its inputs)."""
        key = (layer, tuple(feat_shape))
        if key not in self._mask_cache:
            m = None
            if layer in self._raw_masks:
                m = expand_mask(layer, self._raw_masks[layer], feat_shape)
            if layer in self._channels:
                cm = channel_mask(layer, self._channels[layer], feat_shape)
                m = cm if m is None else m * cm
            self._mask_cache[key] = m
        return self._mask_cache[key]

    def _default_weights(self, targets: Mapping[str, torch.Tensor]) -> dict[str, float]:
        inv = {
            k: 1.0 / max(target_norm(t, self.loss, self.mask_for(k, tuple(t.shape[1:]))), 1e-30)
            for k, t in targets.items()
        }
        total = sum(inv.values())
        return {k: v / total for k, v in inv.items()}

    def check(self, feats) -> None:
        if self.targets is None:
            for k in self.layers:
                self.mask_for(k, tuple(feats[k].shape[1:]))  # raises on a mask that does not fit
            return
        for k in self.layers:
            got, want = feats[k], self.targets[k]
            if tuple(got.shape[1:]) != tuple(want.shape[1:]):
                raise InputError(
                    f"features for layer '{k}' have shape {_shape(want)} but the layer gives {_shape(got)} "
                    "for this input size; give features of that shape, or the image size they were computed at (--size)"
                )

    def layer_losses(
        self, feats: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Unweighted loss of each layer, (B,) each."""
        return {
            k: feature_loss(feats[k], targets[k], self.loss, self.mask_for(k, tuple(feats[k].shape[1:])))
            for k in self.layers
        }

    def score(self, cap: Capture) -> torch.Tensor:
        targets = self.targets if self.targets is not None else cap.targets_of(self.reference)
        losses = self.layer_losses(cap.feats, targets)
        if self.weights is not None:
            return -sum(self.weights[k] * v for k, v in losses.items())
        # per tile: weights 1/||t||^2 of that tile's targets, normalized to sum to one
        inv = {
            k: 1.0 / target_norms(targets[k], self.loss, self.mask_for(k, tuple(targets[k].shape[1:]))).clamp_min(1e-30)
            for k in self.layers
        }
        total = sum(inv.values())
        return -sum((inv[k] / total) * losses[k] for k in self.layers)

    def __repr__(self) -> str:
        return f"Invert({list(self.layers)}, loss={self.loss!r})"


class MaskedUnits(Objective):
    """``sum(mask * a)`` over one layer's activations ``a``: the preferred image of the masked units.

    Args:
        layer: the layer.
        mask: broadcastable to the layer's activations without batch: (C, H, W), (H, W), (C,)
            or (N,) for a fully connected layer. Non-zero entries weight their units.
    """

    def __init__(self, layer: str, mask):
        self.layer = layer
        self.layers = (layer,)
        self._raw = mask
        self._cache: dict[tuple[int, ...], torch.Tensor] = {}

    def mask_for(self, feat_shape: tuple[int, ...]) -> torch.Tensor:
        """The unit weights expanded to activations of shape ``feat_shape`` (built once per shape)."""
        feat_shape = tuple(feat_shape)
        if feat_shape not in self._cache:
            self._cache[feat_shape] = expand_mask(self.layer, self._raw, feat_shape)
        return self._cache[feat_shape]

    @property
    def mask(self) -> torch.Tensor | None:
        """The expanded mask of the last shape seen, or None before any."""
        return next(reversed(self._cache.values()), None)

    def check(self, feats) -> None:
        mask = self.mask_for(tuple(feats[self.layer].shape[1:]))
        if not torch.isfinite(mask).all() or not mask.abs().sum() > 0:
            raise InputError(
                f"the unit mask for layer '{self.layer}' selects no unit (all zero, NaN or Inf); set at least one entry"
            )

    def score(self, cap: Capture) -> torch.Tensor:
        a = cap.feats[self.layer]
        return (a * self.mask_for(tuple(a.shape[1:])).to(a)).flatten(1).sum(1)

    def __repr__(self) -> str:
        n = math.nan if self.mask is None else int((self.mask != 0).sum())
        return f"MaskedUnits({self.layer!r}, units={n})"
