"""Strided depthwise convolutions kept in float32 inside a bfloat16 network on a CPU.

oneDNN's bfloat16 kernels for a depthwise convolution with stride 2 are slow on CPU: its forward
and backward measured 2-15x slower than float32 channels-last on the shapes of EfficientNet-Lite0
(a 224 px `prefer` step spent 8.8 ms of its 33 ms in the three of them), while the stride-1
depthwise and the pointwise convolutions are faster in bfloat16 (bench/RESULTS.md, "Strided
depthwise convolutions in float32"). So those few layers leave autocast: their input is cast
up, they run in float32 and the next layer's autocast casts their output back down.

The switch overrides ``forward`` per instance (the module tree, its names and hooks are kept)
and is undone by :func:`set_float32_strided_depthwise` with ``on=False``. Outside a bfloat16
autocast the override computes exactly what the class's ``forward`` does.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

_STATE = "_cnnvis_float32_strided_depthwise"  # module attribute: the candidates and those switched


def strided_depthwise(module: nn.Module) -> list[str]:
    """Names of ``module``'s 2-D convolutions with one group per input channel (depthwise, more
    than one channel) and a stride above 1 along either axis."""
    return [
        name
        for name, m in module.named_modules()
        if isinstance(m, nn.Conv2d) and m.groups == m.in_channels > 1 and max(m.stride) > 1
    ]


def _float32_forward(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    with torch.autocast(x.device.type, enabled=False):
        return type(conv).forward(conv, x.float())


def set_float32_strided_depthwise(module: nn.Module, on: bool) -> list[str]:
    """Run every strided depthwise convolution of ``module`` in float32 (``on``) or as its class
    does; in place, a cheap no-op when nothing changes (it runs before each forward). Returns the
    names switched now."""
    state = getattr(module, _STATE, None)
    if state is None:
        state = {"candidates": frozenset(strided_depthwise(module)), "switched": set()}
        setattr(module, _STATE, state)
    switched: set[str] = state["switched"]
    wanted = set(state["candidates"]) if on else set()
    if wanted == switched:
        return sorted(wanted)
    for name in switched - wanted:
        del module.get_submodule(name).forward  # the class's forward again
    for name in wanted - switched:
        conv = module.get_submodule(name)
        conv.forward = partial(_float32_forward, conv)
    state["switched"] = wanted
    return sorted(wanted)
