"""Activation layouts: what each hooked layer's output is, known from the model, never guessed
from its shape alone, and how it becomes the (B, C, h, w) map that objectives read.

Four layouts are mappable to units:

- ``nchw``: convolutional maps (B, C, H, W);
- ``nhwc``: channels-last maps (B, H, W, C): timm's Swin stages, ConvNeXt's MLPs, MaxViT's
  attention blocks;
- ``tokens``: sequences (B, P + h*w, C) of P prefix tokens (class, distillation, register)
  followed by one token per patch, row-major; a channel is a feature over all patch tokens, a
  neuron one patch position, and the prefix tokens are addressed on their own (``--token``);
- ``vector``: (B, C): logits, pooled features, embeddings (kept as they are).

Anything else (per-head attention weights (B, heads, N, N), windowed tokens whose batch axis is
B x windows) is ``unmappable`` with a reason.

How a 4-D layout is known: one probe forward pass follows the tensors through the modules that
state their channel axis: ``Conv2d``, ``BatchNorm2d``, ``LayerNorm2d`` ... read axis 1, ``Linear`` and
``LayerNorm`` read the last axis. A tensor takes the layout of the module that made it or of
the module that consumes it; a block whose output has its input's shape keeps its input's layout
(residual blocks), and so does a residual branch inside it. A tensor no such module touches
falls back on what the model declares:
``output_fmt`` (timm's ``"NHWC"`` for Swin), tokens for a model with ``num_prefix_tokens`` (its
4-D internals are per-head tensors), channels-first otherwise. A user's own module can declare
both attributes.
"""

from __future__ import annotations

import functools
import math
import weakref
from dataclasses import dataclass

import torch
from torch import nn

from cnnvis.errors import InputError

NCHW, NHWC, TOKENS, VECTOR, UNMAPPABLE = "nchw", "nhwc", "tokens", "vector", "unmappable"
MAPPABLE_LAYOUTS = (NCHW, NHWC, TOKENS, VECTOR)
SUPPORTED_TEXT = "(B, C, H, W) maps, (B, H, W, C) maps, (B, tokens, C) sequences or (B, C) vectors"

# Modules whose input and output have channels on axis 1 (4-D), or on the last axis.
_CHANNELS_FIRST = (
    nn.Conv2d,
    nn.ConvTranspose2d,
    nn.BatchNorm2d,
    nn.GroupNorm,
    nn.InstanceNorm2d,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
)
_CHANNELS_LAST = (nn.Linear,)


@dataclass(frozen=True)
class Layout:
    """A layer's activation layout.

    Attributes:
        kind: ``nchw``, ``nhwc``, ``tokens``, ``vector`` or ``unmappable``.
        prefix: tokens only: the model's prefix tokens (class, distillation, register) that lead
            the sequences that carry them (a patch-embedding output has none; see :func:`split_tokens`).
        reason: unmappable only: why, in words.
    """

    kind: str
    prefix: int = 0
    reason: str = ""

    def describe(self) -> str:
        """A short label for ``cnnvis layers``: ``nchw``, ``tokens+1`` ..."""
        return f"{TOKENS}+{self.prefix}" if self.kind == TOKENS and self.prefix else self.kind


def model_prefix_tokens(module: nn.Module) -> int:
    """The prefix tokens a model declares (timm's ``num_prefix_tokens``), 0 for none."""
    return int(getattr(module, "num_prefix_tokens", 0) or 0)


def _declares_tokens(module: nn.Module) -> bool:
    return hasattr(module, "num_prefix_tokens")


def _channel_side(m: nn.Module, t: torch.Tensor) -> str | None:
    """Which axis module ``m`` reads channels from in the 4-D tensor ``t``: ``nchw``, ``nhwc`` or None."""
    if t.dim() != 4:
        return None
    if isinstance(m, nn.LayerNorm):  # timm's LayerNorm2d subclasses it and permutes inside
        return NCHW if type(m).__name__.endswith("2d") else NHWC
    if isinstance(m, _CHANNELS_LAST):
        return NHWC
    if isinstance(m, _CHANNELS_FIRST):
        return NCHW
    return None


class _Probe:
    """One forward pass with hooks on every module, recording how tensors flow between them."""

    def __init__(self, module: nn.Module):
        self.module = module
        self.tags: dict[int, str] = {}  # id(tensor) -> nchw | nhwc
        self.keep: list[torch.Tensor] = []  # keeps probed tensors alive so their ids stay unique
        self.records: list[tuple[str, torch.Tensor, torch.Tensor | None, bool]] = []

    def run(self, x: torch.Tensor) -> None:
        handles = []
        for name, m in self.module.named_modules():
            if name:
                handles.append(m.register_forward_pre_hook(self._pre(m)))
                handles.append(m.register_forward_hook(self._post(name, m)))
        try:
            with torch.no_grad():
                self.module(x)
        finally:
            for h in handles:
                h.remove()

    def _pre(self, m: nn.Module):
        def hook(_m, inputs):
            t = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
            side = None if t is None else _channel_side(m, t)
            if side:
                self.keep.append(t)
                self.tags.setdefault(id(t), side)

        return hook

    def _post(self, name: str, m: nn.Module):
        leaf = not any(True for _ in m.children())

        def hook(_m, inputs, output):
            if not isinstance(output, torch.Tensor):
                return
            t = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
            side = _channel_side(m, output)
            if side:
                self.tags[id(output)] = side
            self.keep += [output] + ([t] if t is not None else [])
            self.records.append((name, output, t, leaf))

        return hook

    def resolve(self, batch: int) -> dict[str, Layout]:
        """Every recorded module's layout, in the order the modules finished (children first)."""
        fallback = _fallback_4d(self.module)
        inputs = {name: t_in for name, _, t_in, _ in self.records}
        out: dict[str, Layout] = {}
        for name, t, t_in, _leaf in self.records:
            tag = self.tags.get(id(t))
            if tag is None and t_in is not None and t_in.shape == t.shape:
                tag = self.tags.get(id(t_in))  # elementwise leaves and residual blocks keep their input's layout
            if tag is None and t.dim() == 4:
                tag = self._enclosing_tag(name, t, inputs)
            if tag:
                self.tags[id(t)] = tag
            out[name] = _classify(t, tag or fallback, batch, model_prefix_tokens(self.module))
        return out

    def _enclosing_tag(self, name: str, t: torch.Tensor, inputs: dict) -> str | None:
        """The layout of the nearest enclosing block whose input has ``t``'s shape: a residual
        branch (a layer scale after a window reversal) is added to that input, so it shares its axes."""
        parts = name.split(".")
        for k in range(len(parts) - 1, 0, -1):
            t_in = inputs.get(".".join(parts[:k]))
            if t_in is not None and t_in.shape == t.shape and id(t_in) in self.tags:
                return self.tags[id(t_in)]
        return None


def _fallback_4d(module: nn.Module) -> Layout:
    fmt = str(getattr(module, "output_fmt", "") or "").upper()
    if fmt == "NHWC":
        return Layout(NHWC)
    if _declares_tokens(module):
        return Layout(UNMAPPABLE, reason="a per-head tensor of a token model")
    return Layout(NCHW)


def _classify(t: torch.Tensor, tag: str | Layout, batch: int, prefix: int) -> Layout:
    if t.shape[0] != batch:
        return Layout(UNMAPPABLE, reason=f"its first axis ({t.shape[0]}) is not the batch, e.g. windowed tokens")
    if t.dim() == 2:
        return Layout(VECTOR)
    if t.dim() == 3:
        return Layout(TOKENS, prefix=prefix)
    if t.dim() == 4:
        return tag if isinstance(tag, Layout) else Layout(tag)
    return Layout(UNMAPPABLE, reason=f"a {t.dim()}-D output")


def unprobed_layout(module: nn.Module, t: torch.Tensor) -> Layout:
    """The layout of an output the probe pass did not see (a layer that runs only at some input
    sizes): by its dimensions and what the model declares."""
    return _classify(t, _fallback_4d(module), t.shape[0], model_prefix_tokens(module))


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# The probe keeps every activation of its pass alive (it follows tensors by identity), so it runs
# on a corner of the input at most this many pixels square: layouts do not depend on the size, and
# a 4096x4096 canvas probed whole held 24 GB.
PROBE_SIDE = 256


def probe_layouts(module: nn.Module, x: torch.Tensor) -> dict[str, Layout]:
    """The layout of every submodule's output, from one forward pass on ``x`` (B, 3, H, W), B >= 1.

    Layouts do not depend on the input size, so the pass runs on the top-left
    ``min(H, W, PROBE_SIDE)`` square of the first image when the model takes it (else on ``x``
    itself: a model that takes one input size), and the result is cached per module.
    """
    cached = _CACHE.get(module)
    if cached is not None:
        return cached
    side = min(int(x.shape[-2]), int(x.shape[-1]), PROBE_SIDE)
    probe = _Probe(module)
    try:
        probe.run(x[:1, :, :side, :side])
    except (RuntimeError, AssertionError, ValueError):
        probe = _Probe(module)
        probe.run(x[:1])
    layouts = probe.resolve(1)
    _CACHE[module] = layouts
    return layouts


def known_layouts(module: nn.Module) -> dict[str, Layout]:
    """The layouts probed so far for ``module`` (empty before its first capture)."""
    return dict(_CACHE.get(module, {}))


@functools.lru_cache(maxsize=256)  # called for every token layer of every tile batch
def token_grid(n: int, image_hw: tuple[int, int]) -> tuple[int, int] | None:
    """The (h, w) patch grid of ``n`` tokens from an input of ``image_hw`` pixels: the grid at an
    integer stride s with ``floor(H / s) * floor(W / s) == n`` (or with ceil, for padded patches),
    None when there is none."""
    hh, ww = image_hw
    if n <= 0:
        return None
    guess = math.sqrt(hh * ww / n)
    for s in sorted(range(1, max(hh, ww) + 1), key=lambda s: abs(s - guess))[:64]:
        for gh, gw in ((hh // s, ww // s), (-(-hh // s), -(-ww // s))):
            if gh * gw == n:
                return gh, gw
    return None


def split_tokens(t: torch.Tensor, layout: Layout, image_hw: tuple[int, int]) -> tuple[int, tuple[int, int]] | None:
    """How many prefix tokens a token sequence (B, N, C) from an ``image_hw`` input leads with,
    and its patch grid: the model's prefix where the rest forms a grid, else none (a
    patch-embedding output); None when neither forms a grid."""
    n = t.shape[1]
    for p in dict.fromkeys((layout.prefix, 0)):
        grid = token_grid(n - p, image_hw)
        if grid is not None:
            return p, grid
    return None


def unmappable_error(layer: str, shape: tuple[int, ...], reason: str) -> InputError:
    return InputError(
        f"layer '{layer}' gives {'x'.join(map(str, shape))} ({reason}), which has no units to address; "
        f"pick a layer with {SUPPORTED_TEXT} (see: cnnvis layers MODEL)"
    )


def to_map(
    layer: str, t: torch.Tensor, layout: Layout, image_hw: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``t`` as objectives read it: a map (B, C, h, w) (vectors stay (B, C)), and the prefix
    tokens (B, P, C) of a token sequence that has some (else None). Differentiable views."""
    if layout.kind == UNMAPPABLE:
        raise unmappable_error(layer, tuple(t.shape), layout.reason)
    if layout.kind == VECTOR and t.dim() == 2 or layout.kind == NCHW and t.dim() == 4:
        return t, None
    if layout.kind == NHWC and t.dim() == 4:
        return t.permute(0, 3, 1, 2), None
    if layout.kind == TOKENS and t.dim() == 3:
        split = split_tokens(t, layout, image_hw)
        if split is None:
            raise unmappable_error(
                layer, tuple(t.shape), f"its tokens form no patch grid at {image_hw[0]}x{image_hw[1]}"
            )
        p, (gh, gw) = split
        grid = t[:, p:].transpose(1, 2).reshape(t.shape[0], t.shape[2], gh, gw)
        return grid, (t[:, :p] if p else None)
    raise unmappable_error(layer, tuple(t.shape), f"a {t.dim()}-D output where the probe saw {layout.kind}")
