"""Which channels of a layer to dream: neural-dream's channel modes (``-channel_mode`` /
``-channel_capture``), chosen once from the start image's activations."""

from __future__ import annotations

import torch

from cnnvis.canvas.sizes import resize
from cnnvis.defaults import CHANNEL_MODES
from cnnvis.errors import InputError


def channel_means(model, layer: str, image: torch.Tensor) -> torch.Tensor:
    """(C,) mean activation of every channel of ``layer`` on ``image`` (1, 3, H, W) in [0, 1],
    seen at the model's input size."""
    side = (model.input_size, model.input_size)
    with model.capture([layer]) as cap, torch.no_grad():
        a = cap(model.normalize(resize(image, side)))[layer]
    if a.dim() < 2:
        raise InputError(
            f"layer '{layer}' has no channel axis (output {tuple(a.shape)}); channel modes need a convolutional layer"
        )
    return a[0].flatten(1).mean(1) if a.dim() > 2 else a[0]


def select_channels(means: torch.Tensor, mode: str, count: int | None, layer: str = "the layer") -> list[int]:
    """The ``count`` channels the image excites most (``strongest``), least (``weakest``) or
    closest to the layer's average (``average``), in that order; ``all`` for every channel."""
    if mode not in CHANNEL_MODES:
        raise InputError(f"unknown channel mode '{mode}'; use one of {', '.join(CHANNEL_MODES)}")
    n = means.numel()
    if mode == "all":
        return list(range(n))
    if count is None or count < 1:
        raise InputError(f"--channel-mode {mode} needs --channel-count K with K >= 1")
    if count > n:
        raise InputError(f"--channel-count {count} is larger than {layer}, which has {n} channels; use at most {n}")
    if mode == "strongest":
        order = torch.argsort(means, descending=True, stable=True)
    elif mode == "weakest":
        order = torch.argsort(means, stable=True)
    else:
        order = torch.argsort((means - means.mean()).abs(), stable=True)
    return [int(c) for c in order[:count]]
