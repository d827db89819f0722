"""Eval-mode BatchNorm folded into the convolution that feeds it: the same function in one pass
over memory instead of two, forward and backward.

An eval-mode BatchNorm is the affine map ``y = (x - mean) / sqrt(var + eps) * gamma + beta``
per channel, so ``bn(conv(x))`` is one convolution with scaled weights and a shifted bias
(``torch.nn.utils.fusion.fuse_conv_bn_weights``). In a memory-bound network (EfficientNet-Lite0's
depthwise blocks) each BatchNorm is a whole read and write of the activations and of their
gradient; folding them made a 1024x1024 dream step of Lite0 1.23x faster, and the CLI's 2048x2048
dream 2.06x faster than float32 before issue 23 instead of 1.59x (bench/RESULTS.md).

Folding is reversible and keeps the module tree: the convolution's weight and bias are swapped
for folded ones and the BatchNorm's ``forward`` is overridden per instance to apply only what
follows the normalization (timm's ``BatchNormAct2d``: its dropout and activation), so every
layer name still resolves and a captured BatchNorm gives the same output. A convolution whose
own output is captured is never folded (its output would change meaning).

A pair is folded only where one probe forward shows that the BatchNorm consumes exactly the
convolution's output, and the network's output after folding matches the output before.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

# Largest |folded - original| of the probe's output, relative to its largest |value|, that is
# still summation order (folding measured 6e-6 relative on EfficientNet-Lite0).
MATCH_TOLERANCE = 1e-3
_STATE = "_cnnvis_batchnorm_folds"  # module attribute: the verified pairs and what folding replaced


def _norm_only(bn: nn.BatchNorm2d) -> bool:
    """``bn``'s forward is the normalization alone, or timm's normalization + dropout + activation."""
    return type(bn) is nn.BatchNorm2d or type(bn).__name__ == "BatchNormAct2d"


def candidate_pairs(module: nn.Module) -> list[tuple[str, str]]:
    """(conv name, BatchNorm name) of siblings declared one after the other, the BatchNorm in eval
    mode with running statistics and as many channels as the convolution has outputs."""
    pairs = []
    for prefix, parent in module.named_modules():
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and _norm_only(bn)):
                continue
            if bn.training or bn.running_mean is None or bn.num_features != conv.out_channels:
                continue
            join = f"{prefix}." if prefix else ""
            pairs.append((join + conv_name, join + bn_name))
    return pairs


def _consumed_directly(module: nn.Module, pairs: list[tuple[str, str]], probe: torch.Tensor) -> list:
    """The pairs whose BatchNorm, in one forward of ``probe``, ran once on the very tensor its
    convolution returned (each ran once)."""
    modules = dict(module.named_modules())
    outputs: dict[str, list] = {c: [] for c, _ in pairs}
    inputs: dict[str, list] = {b: [] for _, b in pairs}
    handles = []
    for conv, bn in pairs:
        handles.append(modules[conv].register_forward_hook(lambda m, i, o, c=conv: outputs[c].append(o)))
        handles.append(modules[bn].register_forward_pre_hook(lambda m, i, b=bn: inputs[b].append(i[0])))
    try:
        with torch.no_grad():
            module(probe)
    finally:
        for h in handles:
            h.remove()
    ok = lambda c, b: len(outputs[c]) == 1 and len(inputs[b]) == 1 and inputs[b][0] is outputs[c][0]  # noqa: E731
    return [(c, b) for c, b in pairs if ok(c, b)]


def _after_norm(bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """What ``bn`` applies after its normalization (folded into the convolution before it)."""
    if type(bn) is nn.BatchNorm2d:
        return x
    return bn.act(bn.drop(x))


def _fold(module: nn.Module, conv_name: str, bn_name: str) -> tuple:
    conv, bn = module.get_submodule(conv_name), module.get_submodule(bn_name)
    saved = (conv.weight, conv.bias)
    weight, bias = fuse_conv_bn_weights(
        conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
    )
    conv.weight = _like(weight, saved[0]).requires_grad_(saved[0].requires_grad)
    conv.bias = bias.requires_grad_(saved[1] is not None and saved[1].requires_grad)
    bn.forward = lambda x, bn=bn: _after_norm(bn, x)
    return saved


def _unfold(module: nn.Module, conv_name: str, bn_name: str, saved: tuple) -> None:
    conv, bn = module.get_submodule(conv_name), module.get_submodule(bn_name)
    conv.weight, conv.bias = (_like(t, conv.weight) for t in saved)  # the module may have moved since
    del bn.forward  # the class's forward again


def _like(saved: nn.Parameter | None, now: torch.Tensor) -> nn.Parameter | None:
    """``saved`` on ``now``'s device and in its memory format (the module may have moved or been
    put channels-last since ``saved`` was swapped out)."""
    if saved is None:
        return None
    fmt = torch.channels_last if saved.dim() == 4 and _is_channels_last(now) else torch.contiguous_format
    if saved.device == now.device and saved.is_contiguous(memory_format=fmt):
        return saved
    moved = saved.detach().to(now.device).contiguous(memory_format=fmt)
    return nn.Parameter(moved, requires_grad=saved.requires_grad)


def _is_channels_last(t: torch.Tensor) -> bool:
    return t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


def _verified_pairs(module: nn.Module, probe: torch.Tensor) -> list[tuple[str, str]]:
    """The foldable pairs of ``module`` (cached on it): consumed directly, and folding all of
    them leaves the probe's output unchanged to :data:`MATCH_TOLERANCE`; else none."""
    state = getattr(module, _STATE, None)
    if state is not None:
        return state["pairs"]
    pairs = candidate_pairs(module)
    state = {"pairs": [], "saved": {}}
    if pairs:
        saved = {}
        try:
            pairs = _consumed_directly(module, pairs, probe)
            with torch.no_grad():
                before = module(probe)
                saved = {p: _fold(module, *p) for p in pairs}
                after = module(probe)
            state["pairs"] = pairs if _matches(before, after) else []
        except Exception:  # noqa: BLE001 - a network the probe cannot run is simply not folded
            state["pairs"] = []
        finally:
            for p, s in saved.items():
                _unfold(module, *p, s)
    setattr(module, _STATE, state)
    return state["pairs"]


def _matches(before, after) -> bool:
    if not (isinstance(before, torch.Tensor) and isinstance(after, torch.Tensor)):
        return False
    scale = float(before.abs().max()) or 1.0
    return float((before - after).abs().max()) <= MATCH_TOLERANCE * scale


def set_folds(
    module: nn.Module, fold: bool, keep: Iterable[str] = (), probe: torch.Tensor | None = None
) -> list[tuple[str, str]]:
    """Fold every verified (conv, BatchNorm) pair of ``module`` whose convolution is not in
    ``keep`` (the captured layers), or unfold them all when ``fold`` is false. ``probe``
    (1, 3, H, W): an input the network takes, run twice the first time a module is folded; without
    it only pairs verified before are folded (a cheap toggle, run before each forward). Returns the
    pairs folded now. The folding state lives on the module."""
    state = getattr(module, _STATE, None)
    if fold and state is None and probe is not None:
        _verified_pairs(module, probe)
        state = getattr(module, _STATE)
    if state is None:
        return []
    keep = set(keep)
    wanted = {p for p in state["pairs"] if fold and p[0] not in keep}
    saved = state["saved"]
    if wanted == saved.keys():
        return sorted(wanted)
    for p in [p for p in saved if p not in wanted]:
        _unfold(module, *p, saved.pop(p))
    for p in wanted - saved.keys():
        saved[p] = _fold(module, *p)
    return sorted(wanted)
