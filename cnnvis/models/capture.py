"""Forward hooks on named layers: capture their outputs and stop the forward pass early.

Layers are addressed by their dotted ``named_modules()`` names (``blocks.4.2``). Hooks live
only inside a :class:`FeatureCapture` context and are always removed on exit.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnvis.defaults import ACTIVATION_SIDES
from cnnvis.errors import InputError
from cnnvis.models.layer_table import LayerTable, check_layer_names


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

    With ``stop_early`` (the default) the forward pass is cut short once every requested
    layer has fired, so layers after the deepest requested one cost nothing.

    Each hooked output is replaced downstream by a clone: a later functional in-place op
    (``F.relu(x, inplace=True)`` in torchvision's Inception blocks) then cannot overwrite the
    captured pre-activation tensor.
    """

    def __init__(
        self, module: nn.Module, layers: Sequence[str], stop_early: bool = True, model_name: str = "the model"
    ):
        self.module = module
        self.layers = list(dict.fromkeys(layers))
        self.stop_early = stop_early
        check_layers(module, self.layers, model_name)
        self._feats: dict[str, torch.Tensor] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

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
        self._feats = {}

    def _make_hook(self, name: str, wanted: set[str]):
        def hook(_module, _inputs, output):
            if not isinstance(output, torch.Tensor):
                raise InputError(
                    f"layer '{name}' returns {type(output).__name__}, not a tensor; pick one of its submodules"
                )
            self._feats[name] = output
            if self.stop_early and wanted <= self._feats.keys():
                raise _StopForward
            return output.clone()

        return hook

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the network on normalized input ``x`` (B, 3, H, W); return layer -> activations."""
        self._feats = {}
        if _is_script(self.module):
            out = self.module(x)
            if not isinstance(out, torch.Tensor):
                raise InputError(
                    f"the TorchScript model returns {type(out).__name__}, not a tensor; "
                    "script a module that returns one"
                )
            return {OUTPUT: out}
        try:
            self.module(x)
        except _StopForward:
            pass
        feats, self._feats = self._feats, {}
        missing = [n for n in self.layers if n not in feats]
        if missing:
            raise InputError(
                f"layer '{missing[0]}' did not run in the forward pass; pick a layer that the model's forward() calls"
            )
        return feats


def list_layers(module: nn.Module, x: torch.Tensor) -> list[tuple[str, str, tuple[int, ...] | None]]:
    """Run one forward pass on ``x`` and report ``(name, type, output shape)`` for every submodule.

    Modules that did not run, or whose output is not a single tensor, get ``None`` as shape.
    """
    if _is_script(module):
        with torch.no_grad():
            out = module(x)
        return [(OUTPUT, type(module).__name__, tuple(out.shape) if isinstance(out, torch.Tensor) else None)]
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
    return [(n, type(m).__name__, shapes.get(n)) for n, m in module.named_modules() if n]


def live_table(module: nn.Module, model_name: str, input_size: int) -> LayerTable:
    """The :class:`LayerTable` of ``module`` at ``input_size`` pixels (one forward pass)."""
    rows = list_layers(module, torch.full((1, 3, input_size, input_size), 0.5))
    return LayerTable(
        model=model_name,
        input_size=input_size,
        names=tuple(name for name, _, _ in rows),
        shapes={name: shape[1:] for name, _, shape in rows if shape},
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
