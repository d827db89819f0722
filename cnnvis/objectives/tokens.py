"""Prefix-token objectives: a channel of a ViT's class (or distillation, register) token.

A token layer's patch tokens are a map (a channel there is a feature over all patches); its
prefix tokens are no position on that map, so they are addressed on their own
(the ``prefix`` of :class:`cnnvis.objectives.base.Capture`).
"""

from __future__ import annotations

import torch

from cnnvis.errors import InputError
from cnnvis.models.layer_table import check_channel
from cnnvis.objectives.base import Capture, Objective, prefix_of

TOKEN_NAMES = {"cls": 0}  # the class token leads the prefix in timm and open_clip


def parse_token(text: str) -> int:
    """``cls`` or a prefix-token index (0-based) -> the index."""
    text = str(text).strip().lower()
    if text in TOKEN_NAMES:
        return TOKEN_NAMES[text]
    try:
        index = int(text)
    except ValueError:
        raise InputError(f"bad token '{text}'; use cls or a prefix-token index such as 0") from None
    if index < 0:
        raise InputError(f"bad token {index}; prefix-token indices start at 0 (cls)")
    return index


class TokenChannel(Objective):
    """Channel ``channel`` of prefix token ``token`` (0: the class token) of a token layer: one
    value per tile, (B,)."""

    def __init__(self, layer: str, token: int, channel: int):
        self.layer, self.token, self.channel = layer, int(token), int(channel)
        self.layers = (layer,)

    def check(self, feats) -> None:
        prefix = prefix_of(feats).get(self.layer)
        if prefix is None:
            raise InputError(
                f"--token: layer '{self.layer}' has no prefix tokens; pick a layer of the transformer blocks "
                "(see the layout column of: cnnvis layers MODEL) or drop --token"
            )
        if not 0 <= self.token < prefix.shape[1]:
            raise InputError(
                f"token {self.token} is out of range for layer '{self.layer}' with {prefix.shape[1]} prefix "
                f"tokens; use 0..{prefix.shape[1] - 1} (0 is cls)"
            )
        check_channel(self.channel, prefix.shape[2], f"layer '{self.layer}'")

    def score(self, cap: Capture) -> torch.Tensor:
        return cap.prefix[self.layer][:, self.token, self.channel]

    def __repr__(self) -> str:
        return f"TokenChannel({self.layer!r}, token={self.token}, channel={self.channel})"
