"""Activation objectives: dream (layer amplification), channel, neuron and guide.

Each scores every tile of a batch from its captured activations, shape (B,); see
:mod:`cnnvis.objectives.base` for the protocol and composition::

    obj = Dream("blocks.4.2") + 0.5 * Channel("blocks.5.0", 17)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from cnnvis.defaults import DREAM_FORMS, DREAM_GRAD_CLIP, DREAM_L1, DREAM_L2
from cnnvis.errors import InputError
from cnnvis.models.layer_table import check_channel
from cnnvis.objectives.base import Capture, Objective
from cnnvis.objectives.position import MapPosition


def _per_tile_sum(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).sum(1)


class Dream(Objective):
    """Layer amplification: make the layer's existing activations stronger.

    ``form="cnnvis"`` (jcjohnson/cnn-vis): the gradient with respect to each activation a is
    ``l1_weight * |a| + l2_weight * clip(a, -grad_clip, grad_clip)``. Its integral, used here as
    the score, is ``l1 * a|a|/2 + l2 * huber_grad_clip(a)``, so autograd reproduces that
    gradient exactly.

    ``form="meansquare"`` (Google's deepdream): the mean of ``a**2`` over the tile.

    ``channels``: amplify only these channels of the layer (neural-dream's channel modes; see
    :func:`cnnvis.recipes.channels.select_channels`); ``None`` for all.
    """

    def __init__(
        self,
        layer: str,
        form: str = "cnnvis",
        l1_weight: float = DREAM_L1,
        l2_weight: float = DREAM_L2,
        grad_clip: float = DREAM_GRAD_CLIP,
        channels: Sequence[int] | None = None,
    ):
        if form not in DREAM_FORMS:
            raise InputError(f"unknown dream form '{form}'; use one of {', '.join(DREAM_FORMS)}")
        self.layer, self.form = layer, form
        self.l1_weight, self.l2_weight, self.grad_clip = l1_weight, l2_weight, grad_clip
        self.channels = None if channels is None else [int(c) for c in channels]
        self.layers = (layer,)

    def check(self, feats) -> None:
        for c in self.channels or ():
            _check_channel(feats, self.layer, c)

    def score(self, cap: Capture) -> torch.Tensor:
        a = cap.feats[self.layer]
        if self.channels is not None:
            a = a[:, self.channels]
        if self.form == "meansquare":
            return a.pow(2).flatten(1).mean(1)
        s = self.l1_weight * _per_tile_sum(a * a.abs() / 2)
        if self.l2_weight:
            s = s + self.l2_weight * _per_tile_sum(
                F.huber_loss(a, torch.zeros_like(a), reduction="none", delta=self.grad_clip)
            )
        return s

    def __repr__(self) -> str:
        return f"Dream({self.layer!r}, form={self.form!r})"


def _check_channel(feats, layer: str, channel: int) -> int:
    a = feats[layer]
    if a.dim() < 2:
        raise InputError(
            f"layer '{layer}' has output shape {tuple(a.shape)} with no channel axis; pick a convolutional layer"
        )
    n = a.shape[1]
    check_channel(channel, n, f"layer '{layer}'")
    return n


class Channel(Objective):
    """Mean activation of one channel over the whole tile."""

    def __init__(self, layer: str, channel: int):
        self.layer, self.channel = layer, int(channel)
        self.layers = (layer,)

    def check(self, feats) -> None:
        _check_channel(feats, self.layer, self.channel)

    def score(self, cap: Capture) -> torch.Tensor:
        a = cap.feats[self.layer][:, self.channel]
        return a.flatten(1).mean(1) if a.dim() > 1 else a

    def __repr__(self) -> str:
        return f"Channel({self.layer!r}, {self.channel})"


class Neuron(Objective):
    """One unit: channel ``channel`` at feature-map position (``y``, ``x``) of every tile.

    ``x`` / ``y`` default to the centre of the tile's feature map. With ``grid`` (H, W), the
    layer's map at the model's input size, they are given on that map and taken at the same
    relative place on smaller maps (:class:`cnnvis.objectives.position.MapPosition`).
    """

    def __init__(
        self, layer: str, channel: int, x: int | None = None, y: int | None = None, grid: tuple[int, int] | None = None
    ):
        self.layer, self.channel, self.x, self.y = layer, int(channel), x, y
        self.position = MapPosition(x, y, None if grid is None else tuple(grid))
        self.layers = (layer,)

    def _pos(self, a: torch.Tensor) -> tuple[int, int]:
        return self.position.at(*a.shape[-2:])

    def check(self, feats) -> None:
        _check_channel(feats, self.layer, self.channel)
        a = feats[self.layer]
        if a.dim() != 4:
            raise InputError(
                f"layer '{self.layer}' has output shape {tuple(a.shape)}; "
                "a neuron needs a (B, C, H, W) map, use a channel objective"
            )
        self.position.check(self.layer, *a.shape[-2:])

    def score(self, cap: Capture) -> torch.Tensor:
        a = cap.feats[self.layer]
        y, x = self._pos(a)
        return a[:, self.channel, y, x]

    def __repr__(self) -> str:
        return f"Neuron({self.layer!r}, {self.channel}, x={self.x}, y={self.y})"


class Guide(Objective):
    """Amplify the features a guide image has (Google's deepdream ``objective_guide``).

    For every position i of the tile's activations x_i, the score is ``max_j <x_i, g_j>``
    over the guide's feature vectors g_j, so the gradient at i is the best-matching
    guide vector.

    Args:
        layer: the layer to match.
        guide_feats: the guide image's activations at ``layer``, shape (1, C, h, w).
    """

    def __init__(self, layer: str, guide_feats: torch.Tensor):
        self.layer = layer
        self.guide = guide_feats.detach().flatten(2)[0]  # (C, N)
        self.layers = (layer,)

    def check(self, feats) -> None:
        c = feats[self.layer].shape[1]
        if c != self.guide.shape[0]:
            raise InputError(
                f"guide features have {self.guide.shape[0]} channels but layer '{self.layer}' has {c}; "
                "compute them at the same layer"
            )

    def score(self, cap: Capture) -> torch.Tensor:
        x = cap.feats[self.layer].flatten(2)  # (B, C, M)
        sim = torch.einsum("bcm,cn->bmn", x, self.guide.to(x))
        return sim.max(dim=2).values.sum(1)

    def __repr__(self) -> str:
        return f"Guide({self.layer!r})"
