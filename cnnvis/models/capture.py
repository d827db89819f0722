"""Forward hooks on named layers: capture their outputs and stop the forward pass early.

Layers are addressed by their dotted ``named_modules()`` names (``blocks.4.2``). Hooks live
only inside a :class:`FeatureCapture` context and are always removed on exit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from cnnvis.defaults import ACTIVATION_SIDES
from cnnvis.errors import InputError
from cnnvis.models.compute import Execution
from cnnvis.models.layer_table import LayerTable, check_layer_names
from cnnvis.models.layouts import TOKENS, Layout, probe_layouts, to_map, unprobed_layout


class _StopForward(Exception):
    """Raised from a hook once every requested layer has been captured."""


OUTPUT = "output"  # the only layer of a TorchScript model: its final output


def _is_script(module: nn.Module) -> bool:
    return isinstance(module, torch.jit.ScriptModule)


def layer_names(module: nn.Module) -> list[str]:
    """All dotted submodule names of ``module``, in registration order (the root excluded).

    TorchScript modules do not run Python hooks inside, so their only layer is ``"output"``.
    """
    if _is_script(module):
        return [OUTPUT]
    return [n for n, _ in module.named_modules() if n]


def check_layers(module: nn.Module, layers: Sequence[str], model_name: str = "the model") -> None:
    """Raise :class:`InputError` naming the first unknown layer, with a close match and the listing command."""
    check_layer_names(layer_names(module), layers, model_name)


class FeatureCapture:
    """Context manager that records the outputs of ``layers`` during a forward pass.

    Use::

        with FeatureCapture(net, ["blocks.4.2"]) as cap:
            feats = cap(x)          # {"blocks.4.2": Tensor (B, C, h, w)}
            cap.prefix              # {layer: (B, P, C)} for token layers with prefix tokens

    Every output is handed over in the layout objectives read (:mod:`cnnvis.models.layouts`):
    channels-last maps and token sequences become (B, C, h, w) maps, vectors stay (B, C), and
    the prefix tokens (class, distillation, register) of a token layer go to :attr:`prefix`.
    The layouts come from one probe pass on the first call.

    With ``stop_early`` (the default) the forward pass is cut short once every requested
    layer has fired, so layers after the deepest requested one cost nothing.

    ``fixed_size``: the only input side the model takes (a ViT's 224); any other input is
    resized to it (bilinear, differentiable) first.

    ``execution``: the dtype, memory format and compilation the network runs with
    (:class:`cnnvis.models.compute.Execution`; default float32, eager, contiguous weights): the
    module's weights are put in its memory format here; the features are handed over as float32
    whatever the network's dtype.

    Each hooked output is replaced downstream by a clone: a later functional in-place op
    (``F.relu(x, inplace=True)`` in torchvision's Inception blocks) then cannot overwrite the
    captured pre-activation tensor.
    """

    def __init__(
        self,
        module: nn.Module,
        layers: Sequence[str],
        stop_early: bool = True,
        model_name: str = "the model",
        fixed_size: int | None = None,
        execution: Execution | None = None,
    ):
        self.module = module
        self.layers = list(dict.fromkeys(layers))
        self.stop_early = stop_early
        self.fixed_size = fixed_size
        self.execution = execution or Execution()
        if not _is_script(module):
            # the weights folded and in the memory format this capture runs in
            self.execution.prepare(module, keep=tuple(self.layers), side=fixed_size)
        check_layers(module, self.layers, model_name)
        self._feats: dict[str, torch.Tensor] = {}
        self.prefix: dict[str, torch.Tensor] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._layouts: dict[str, Layout] | None = None
        self._image_hw = (0, 0)

    def __enter__(self) -> FeatureCapture:
        if _is_script(self.module):
            return self
        modules = dict(self.module.named_modules())
        wanted = set(self.layers)
        for name in self.layers:
            self._handles.append(modules[name].register_forward_hook(self._make_hook(name, wanted)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._feats, self.prefix = {}, {}

    def _make_hook(self, name: str, wanted: set[str]):
        def hook(_module, _inputs, output):
            if self._layouts is None:  # the probe pass
                return None
            if not isinstance(output, torch.Tensor):
                raise InputError(
                    f"layer '{name}' returns {type(output).__name__}, not a tensor; pick one of its submodules"
                )
            layout = self._layouts.get(name) or unprobed_layout(self.module, output)
            self._feats[name], prefix = to_map(name, output, layout, self._image_hw)
            if self.execution.dtype != torch.float32:  # the objective computes in float32
                self._feats[name] = self._feats[name].float()
                prefix = None if prefix is None else prefix.float()
            if prefix is not None:
                self.prefix[name] = prefix
            if self.stop_early and wanted <= self._feats.keys():
                raise _StopForward
            return output.clone()

        return hook

    def fit(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, 3, H, W) at the model's fixed input size (unchanged for models of any size)."""
        side = self.fixed_size
        if side is None or tuple(x.shape[-2:]) == (side, side):
            return x
        return F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)

    def layout(self, layer: str) -> Layout | None:
        """``layer``'s layout, once a call has probed them (None before, and for TorchScript)."""
        return None if self._layouts is None else self._layouts.get(layer)

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the network on normalized input ``x`` (B, 3, H, W); return layer -> activations
        (B, C, h, w) maps or (B, C) vectors, and set :attr:`prefix`."""
        self._feats, self.prefix = {}, {}
        x = self.fit(x)
        if _is_script(self.module):
            out = self.module(x)
            if not isinstance(out, torch.Tensor):
                raise InputError(
                    f"the TorchScript model returns {type(out).__name__}, not a tensor; "
                    "script a module that returns one"
                )
            return {OUTPUT: out}
        if self._layouts is None:
            self._layouts = probe_layouts(self.module, x[:1].detach())
        self._image_hw = (int(x.shape[-2]), int(x.shape[-1]))
        run = self.execution
        run.refold(self.module, tuple(self.layers))
        try:
            with run.autocast(x.device.type):
                run.forward(self.module, run.input(x), passthrough=(_StopForward,))
        except _StopForward:
            pass
        feats, self._feats = self._feats, {}
        missing = [n for n in self.layers if n not in feats]
        if missing:
            raise InputError(
                f"layer '{missing[0]}' did not run in the forward pass; pick a layer that the model's forward() calls"
            )
        return feats


class LayerRow(NamedTuple):
    """One row of :func:`list_layers`: a module's name, type, raw output shape (with batch) and
    layout, and the shape (without batch) objectives see: (C, h, w) for maps and tokens, (C,)
    for vectors; the shapes are ``None`` where the output is not one tensor (or unmappable)."""

    name: str
    type: str
    shape: tuple[int, ...] | None
    layout: Layout | None
    map_shape: tuple[int, ...] | None


def _mapped(name: str, shape: tuple[int, ...] | None, layout: Layout | None, hw):
    """The layout as it applies to this output (its actual prefix tokens) and its map shape."""
    if shape is None or layout is None:
        return layout, None
    try:
        mapped, prefix = to_map(name, torch.empty(shape, device="meta"), layout, hw)
    except InputError:
        return layout, None
    if layout.kind == TOKENS:
        layout = Layout(TOKENS, prefix=0 if prefix is None else prefix.shape[1])
    return layout, tuple(mapped.shape[1:])


def list_layers(module: nn.Module, x: torch.Tensor) -> list[LayerRow]:
    """Run one forward pass on ``x`` (1, 3, H, W) and report every submodule's :class:`LayerRow`."""
    if _is_script(module):
        with torch.no_grad():
            out = module(x)
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else None
        return [LayerRow(OUTPUT, type(module).__name__, shape, None, shape[1:] if shape else None)]
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name, m in module.named_modules():
        if not name:
            continue

        def hook(_m, _i, out, name=name):
            if isinstance(out, torch.Tensor):
                shapes[name] = tuple(out.shape)

        handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            module(x)
    finally:
        for h in handles:
            h.remove()
    layouts = probe_layouts(module, x)
    hw = (int(x.shape[-2]), int(x.shape[-1]))
    rows = []
    for n, m in module.named_modules():
        if n:
            shape = shapes.get(n)
            layout, map_shape = _mapped(n, shape, layouts.get(n) if shape else None, hw)
            rows.append(LayerRow(n, type(m).__name__, shape, layout, map_shape))
    return rows


def live_table(module: nn.Module, model_name: str, input_size: int) -> LayerTable:
    """The :class:`LayerTable` of ``module`` at ``input_size`` pixels (one forward pass): each
    layer's shape as objectives see it (see :class:`LayerRow`)."""
    rows = list_layers(module, torch.full((1, 3, input_size, input_size), 0.5))
    return LayerTable(
        model=model_name,
        input_size=input_size,
        names=tuple(row.name for row in rows),
        shapes={row.name: row.map_shape for row in rows if row.map_shape},
    )


_ACTIVATIONS = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Sigmoid,
    nn.Tanh,
    nn.PReLU,
    nn.Mish,
)


def _is_activation(m: nn.Module) -> bool:
    return isinstance(m, _ACTIVATIONS)


def resolve_layer(module: nn.Module, layer: str, activation: str = "pre") -> str:
    """The hook point giving ``layer``'s output before (``pre``) or after (``post``) its activation.

    icnn and cnnpref use pre-ReLU features. Where a module applies its activation inside
    (timm's ``BatchNormAct2d``, ``ConvNormAct``), ``pre`` descends to the child just before that
    activation (``blocks.0.0.bn1`` -> ``blocks.0.0.bn1.drop``); a named activation module in a
    Sequential resolves to its predecessor. ``post`` moves to the activation that directly follows
    ``layer`` in its Sequential (VGG's ``features.0`` -> ``features.1``). Otherwise, or for
    TorchScript, ``layer`` itself is returned: its output has no activation to step over.
    A converted Caffe net (:class:`cnnvis.models.caffe.CaffeNet`) follows its blobs instead:
    ``conv5_1`` ``post`` -> ``relu5_1``, ``relu5_1`` ``pre`` -> ``conv5_1``.
    """
    if activation not in ACTIVATION_SIDES:
        raise InputError(f"unknown activation side '{activation}'; use one of {', '.join(ACTIVATION_SIDES)}")
    check_layers(module, [layer])
    if _is_script(module):
        return layer
    caffe_resolve = getattr(module, "resolve_activation", None)
    if callable(caffe_resolve):  # a CaffeNet: activations follow their layer by blob, not by position
        return caffe_resolve(layer, activation)
    modules = dict(module.named_modules())
    parent_name, _, child = layer.rpartition(".")
    parent = modules[parent_name] if parent_name else module
    siblings = list(parent.named_children()) if isinstance(parent, nn.Sequential) else []
    idx = next((i for i, (n, _) in enumerate(siblings) if n == child), None)
    target = modules[layer]
    if activation == "post":
        if idx is not None and idx + 1 < len(siblings) and _is_activation(siblings[idx + 1][1]):
            return f"{parent_name + '.' if parent_name else ''}{siblings[idx + 1][0]}"
        return layer
    if _is_activation(target) and idx is not None and idx > 0:
        return f"{parent_name + '.' if parent_name else ''}{siblings[idx - 1][0]}"
    name = layer
    while True:
        kids = list(modules[name].named_children())
        if len(kids) >= 2 and _is_activation(kids[-1][1]):
            return f"{name}.{kids[-2][0]}"
        if kids and _ends_with_activation(kids[-1][1]):
            name = f"{name}.{kids[-1][0]}"
            continue
        return name


def _ends_with_activation(m: nn.Module) -> bool:
    kids = list(m.children())
    if not kids:
        return False
    return _is_activation(kids[-1]) or _ends_with_activation(kids[-1])
