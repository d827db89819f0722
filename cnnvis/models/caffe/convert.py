"""Caffe nets as PyTorch modules: :class:`CaffeNet` runs a prototxt's graph with caffemodel weights.

Each Caffe layer becomes a submodule registered in prototxt order under its Caffe name
(``conv5_1``, ``relu5_1``, ``inception_4c/output``), so forward hooks (and
:class:`cnnvis.models.capture.FeatureCapture`) see every layer's output. Torch forbids ``.`` in module
names: a ``.`` in a Caffe name becomes ``_`` (``conv1.1`` -> ``conv1_1``); a name that clashes with
an ``nn.Module`` attribute gets a trailing ``_``, a repeated name ``_2``, ``_3``, ...
(:attr:`CaffeNet.caffe_names` maps module names back).

Caffe's in-place layers (``ReLU`` with ``top == bottom``) run out of place here, so the output of
``conv5_1`` is the pre-ReLU feature and the output of ``relu5_1`` the post-ReLU one; blob names
keep Caffe's meaning (after ``relu5_1`` runs, blob ``conv5_1`` holds the rectified values, as in
Caffe's ``net.blobs``). Layer arithmetic follows Caffe, not torch, where they differ: pooling
rounds output sizes up (unless ``round_mode: FLOOR``) and drops a last window that would start in
the padding; AVE pooling divides by the window's size clipped to the padded border; BatchNorm
divides its stored mean and variance by the stored scale factor and always uses these global
statistics; Dropout is the identity.

Files written by :func:`save_converted` are one ``torch.save`` dict, loadable with
``torch.load(weights_only=True)``::

    {"cnnvis_caffe": 1, "prototxt": <the net's text>, "state_dict": {...}, "meta": {...}}
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from google.protobuf import text_format
from torch import nn

from cnnvis.errors import InputError
from cnnvis.models.caffe.builders import (
    ACTIVATIONS,
    BUILDERS,
    MAX_DIM,
    BuildContext,
    ParamBudget,
    available_bytes,
    meta_outputs,
    unsupported_layer,
)
from cnnvis.models.caffe.reader import (
    CaffeLayer,
    net_inputs,
    net_layers,
    parse_prototxt,
    read_caffemodel,
    read_prototxt_text,
    weights_by_layer,
)

FORMAT_KEY = "cnnvis_caffe"


@dataclass
class _Step:
    module: str  # submodule name
    caffe_name: str
    type: str
    bottoms: list[str]
    tops: list[str]


def _read_net(net) -> tuple[object, str, str]:
    """(NetParameter, its text, a name for messages) from a path or a message."""
    if isinstance(net, (str, os.PathLike)):
        path = os.fspath(net)
        text = read_prototxt_text(path)
        return parse_prototxt(text, f"prototxt '{path}'"), text, path
    if not hasattr(net, "layer"):
        raise InputError(
            f"expected a prototxt path or a caffe NetParameter, got {type(net).__name__}; pass the deploy .prototxt"
        )
    return net, text_format.MessageToString(net), "the prototxt"


class CaffeNet(nn.Module):
    """A Caffe net as a PyTorch module: layers in prototxt order, forward runs the blob graph.

    Args:
        net: a ``.prototxt`` path or a ``caffe.NetParameter`` (layers in the TEST phase are kept).
        weights: ``None`` for random initialization (torch's defaults; BatchNorm mean 0, var 1),
            a ``.caffemodel`` path or ``NetParameter`` (blobs matched to layers by name; layers
            of the caffemodel the prototxt lacks are ignored), or a state dict of this module.
        output: the blob ``forward`` returns; default the last top of the last layer.

    Input layers (and ``input:`` declarations) become :attr:`input_blobs`; they, Silence layers
    and layers excluded from the TEST phase get no submodule.

    Raises:
        InputError: unparsable files, an unsupported layer type, a bottom no earlier layer
            writes, a layer that needs weights the caffemodel lacks, or mismatched shapes.

    Attributes:
        input_blobs: names of the input blobs (``data``); ``forward(x)`` feeds the first.
        blob_shapes: blob name -> shape at the prototxt's declared input shape (None if unknown).
        caffe_names: submodule name -> Caffe layer name. ``layer_types``: submodule -> Caffe type.
        output_blob, default_output: the blob ``forward`` returns, and the last layer's last top.
        prototxt: the net's text (what :func:`save_converted` stores). ``meta``: what
            :func:`load_converted` read beside it.
    """

    def __init__(self, net, weights=None, output: str | None = None):
        super().__init__()
        net, text, source = _read_net(net)
        self.prototxt = text
        state_dict = caffe_weights = None
        weights_source = "the caffemodel"
        if isinstance(weights, Mapping):
            state_dict = weights
        elif isinstance(weights, (str, os.PathLike)):
            weights_source = os.fspath(weights)
            caffe_weights = weights_by_layer(read_caffemodel(weights), weights_source)
        elif weights is not None:
            if not hasattr(weights, "layer"):
                raise InputError(
                    "weights must be a .caffemodel path, a caffe NetParameter or a state dict, got "
                    f"{type(weights).__name__}"
                )
            caffe_weights = weights_by_layer(weights, weights_source)
        # Every attribute exists before the layers, so a layer named like one gets a '_' suffix.
        self.input_blobs: list[str] = []
        self.blob_shapes: dict[str, tuple[int, ...] | None] = {}
        self.caffe_names: dict[str, str] = {}
        self.layer_types: dict[str, str] = {}
        self.output_blob = self.default_output = ""
        self.meta: dict = {}
        self._steps: list[_Step] = []
        self._writers: dict[str, int] = {}
        # Pre-flight: each builder reserves its parameters' bytes before allocating them. A state
        # dict is assigned in place (nothing new allocated), so only its shapes are checked.
        self._budget = ParamBudget(None if state_dict is not None else available_bytes())
        for blob, shape in net_inputs(net):
            self._add_input(blob, shape, source)
        layers = [layer for layer in net_layers(net, source) if layer.in_test_phase]
        for index, layer in enumerate(layers):
            self._add_layer(index, layer, source, caffe_weights, weights_source, meta=weights is not None)
        if not self._steps:
            raise InputError(f"{source} has no layers to run; pass a deploy prototxt with layers")
        self._writers = {t: i + 1 for i, s in enumerate(self._steps) for t in s.tops}  # blob -> steps needed
        if output is not None and output not in self.blob_shapes:
            raise InputError(
                f"unknown output blob '{output}' for {source}; pick one of its tops, e.g. '{self._steps[-1].tops[-1]}'"
            )
        self.default_output = self._steps[-1].tops[-1]
        self.output_blob = output or self.default_output
        if state_dict is not None:
            self._assign_state(state_dict)
        self.eval()

    # ---------------------------------------------------------------- construction
    def _add_input(self, blob: str, shape: tuple[int, ...] | None, source: str) -> None:
        if shape is not None and not all(0 < d <= MAX_DIM for d in shape):
            raise InputError(
                f"input '{blob}' of {source} has shape {tuple(shape)}; give positive dims up to {MAX_DIM} "
                "(e.g. input_shape { dim: 1 dim: 3 dim: 224 dim: 224 })"
            )
        if blob not in self.input_blobs:
            self.input_blobs.append(blob)
        self.blob_shapes[blob] = shape

    def _module_name(self, caffe_name: str, index: int, type_: str) -> str:
        base = caffe_name.replace(".", "_") or f"{(type_ or 'layer').lower()}{index}"
        if hasattr(self, base) and base not in self._modules:  # e.g. a layer named 'forward' or 'training'
            base += "_"
        name, k = base, 2
        while hasattr(self, name):  # a repeated Caffe name
            name, k = f"{base}_{k}", k + 1
        return name

    def _add_layer(
        self, index: int, layer: CaffeLayer, source: str, caffe_weights, weights_source: str, meta: bool
    ) -> None:
        where = f"layer '{layer.name}' ({layer.type}) in {source}"
        if layer.type == "Input":
            self._add_input_layer(layer, source)
            return
        builder = BUILDERS.get(layer.type)
        if builder is None and layer.type != "Silence":
            raise unsupported_layer(layer, source)
        self._check_bottoms(layer, where)
        if builder is None:
            return  # Silence: consumes blobs, produces nothing
        if not layer.tops:
            raise InputError(f"{where} has no top; give it a top blob")
        blobs = caffe_weights.get(layer.name) if caffe_weights is not None else None
        ctx = BuildContext(layer, [self.blob_shapes[b] for b in layer.bottoms], blobs, where, self._budget)
        # With weights coming, build on the meta device: no memory or time spent on a random init.
        with torch.device("meta") if meta else contextlib.nullcontext():
            module, loader = builder(ctx)
        if caffe_weights is not None:
            _load_layer_weights(module, loader, blobs, where, weights_source)
        out_shapes = _layer_out_shapes(module, ctx, len(layer.tops), where)
        name = self._module_name(layer.name, index, layer.type)
        self.add_module(name, module)
        self.caffe_names[name] = layer.name
        self.layer_types[name] = layer.type
        self._steps.append(_Step(name, layer.name, layer.type, list(layer.bottoms), list(layer.tops)))
        for top, shape in zip(layer.tops, out_shapes):
            self.blob_shapes[top] = shape

    def _add_input_layer(self, layer: CaffeLayer, source: str) -> None:
        """An ``Input`` layer: each top is an input blob; a single declared shape serves every top."""
        shapes = [tuple(int(d) for d in s.dim) for s in layer.param.input_param.shape]
        for i, top in enumerate(layer.tops):
            shape = shapes[i] if i < len(shapes) else (shapes[0] if len(shapes) == 1 else None)
            self._add_input(top, shape, source)

    def _check_bottoms(self, layer: CaffeLayer, where: str) -> None:
        for b in layer.bottoms:
            if b not in self.blob_shapes:
                raise InputError(
                    f"{where} reads blob '{b}' that no earlier layer writes; fix its bottom, "
                    "or declare the input (input: / an Input layer)"
                )

    def _assign_state(self, state: Mapping[str, torch.Tensor]) -> None:
        target = self.state_dict()
        missing = [k for k in target if k not in state]
        extra = [k for k in state if k not in target]
        bad = [k for k in target if k in state and tuple(state[k].shape) != tuple(target[k].shape)]
        if missing or extra or bad:
            what = (
                f"missing '{missing[0]}'"
                if missing
                else f"unexpected '{extra[0]}'"
                if extra
                else f"'{bad[0]}' is {tuple(state[bad[0]].shape)}, expected {tuple(target[bad[0]].shape)}"
            )
            raise InputError(f"the weights do not fit the prototxt ({what}); pass weights saved from the same net")
        self.load_state_dict({k: v.detach().to("cpu", torch.float32) for k, v in state.items()}, assign=True)

    # ---------------------------------------------------------------- running
    def forward(self, x: torch.Tensor | Mapping[str, torch.Tensor], output: str | None = None) -> torch.Tensor:
        """Run the net; ``x`` is the first input blob (B, C, H, W) or a dict blob -> tensor.

        Returns the blob ``output`` (default :attr:`output_blob`), after the last layer writing it.
        """
        blobs = dict(x) if isinstance(x, Mapping) else {self.input_blobs[0]: x} if self.input_blobs else {}
        missing = [b for b in self.input_blobs if b not in blobs]
        if missing:
            raise InputError(
                f"input blob '{missing[0]}' was not given; pass a dict with every input: {', '.join(self.input_blobs)}"
            )
        target = output or self.output_blob
        if target not in self.blob_shapes:
            raise InputError(f"unknown output blob '{target}'; pick a top of the net")
        for step in self._steps[: self._writers.get(target, 0)]:
            out = self._modules[step.module](*[blobs[b] for b in step.bottoms])
            if isinstance(out, torch.Tensor):
                for top in step.tops:
                    blobs[top] = out
            else:
                blobs.update(zip(step.tops, out))
        return blobs[target]

    # ---------------------------------------------------------------- activations
    def _index(self, name: str) -> int:
        for i, s in enumerate(self._steps):
            if s.module == name or s.caffe_name == name:
                return i
        raise InputError(f"unknown layer '{name}'; pick one of: {', '.join(s.module for s in self._steps[:8])}, ...")

    def post_activation(self, name: str) -> str | None:
        """The activation layer applied to ``name``'s (single) top, if the next reader of it is one.

        ``post_activation("conv5_1")`` is ``"relu5_1"`` for Caffe's in-place ``relu5_1``; ``None``
        when the next layer to read the top is not an activation (or the top is rewritten first).
        """
        i = self._index(name)
        if len(self._steps[i].tops) != 1:
            return None
        top = self._steps[i].tops[0]
        for step in self._steps[i + 1 :]:
            if top in step.bottoms:
                return step.module if step.type in ACTIVATIONS and step.bottoms == [top] else None
            if top in step.tops:
                return None
        return None

    def pre_activation(self, name: str) -> str | None:
        """For an activation layer, the layer whose output it takes (``relu5_1`` -> ``conv5_1``); else None."""
        j = self._index(name)
        step = self._steps[j]
        if step.type not in ACTIVATIONS or len(step.bottoms) != 1:
            return None
        for i in range(j - 1, -1, -1):
            if step.bottoms[0] in self._steps[i].tops:
                prev = self._steps[i].module
                return prev if self.post_activation(prev) == step.module else None
        return None

    def resolve_activation(self, layer: str, side: str) -> str:
        """The hook point for ``layer``'s output before (``pre``) or after (``post``) its activation."""
        is_act = self._steps[self._index(layer)].type in ACTIVATIONS
        if side == "post":
            return layer if is_act else (self.post_activation(layer) or layer)
        return (self.pre_activation(layer) or layer) if is_act else layer


def _load_layer_weights(module: nn.Module, loader, blobs, where: str, weights_source: str) -> None:
    """Materialize a layer built on the meta device, with its caffemodel blobs when it has parameters."""
    if loader is not None:
        if not blobs:
            raise InputError(
                f"{where} has no weights in '{weights_source}'; pass the caffemodel trained with this prototxt "
                "(or no weights for a random initialization)"
            )
        state = loader(blobs, module.state_dict(), where)
        module.to_empty(device="cpu")
        module.load_state_dict(state)
    else:
        module.to_empty(device="cpu")


def _layer_out_shapes(module: nn.Module, ctx: BuildContext, n_tops: int, where: str) -> list[tuple[int, ...] | None]:
    """The shapes of a layer's tops, from a meta-device run (all None when an input shape is unknown)."""
    if not (all(s is not None for s in ctx.in_shapes) and ctx.in_shapes):
        return [None] * n_tops
    try:
        got = meta_outputs(module, ctx.in_shapes)
    except Exception as e:  # any shape error inside torch, reported against the layer
        raise InputError(
            f"{where} cannot take inputs of shape {', '.join(str(tuple(s)) for s in ctx.in_shapes)} "
            f"({' '.join(str(e).split())[:200]}); fix the prototxt"
        ) from None
    return got * n_tops if len(got) == 1 else got


# ------------------------------------------------------------------------------- files
def convert_caffe(
    prototxt: str | os.PathLike, caffemodel: str | os.PathLike | None = None, output: str | None = None
) -> CaffeNet:
    """A :class:`CaffeNet` from a deploy prototxt and its caffemodel (``None``: random weights)."""
    return CaffeNet(prototxt, caffemodel, output=output)


def _check_meta(meta: dict) -> None:
    def ok(v) -> bool:
        if v is None or isinstance(v, (str, int, float, bool)):
            return True
        if isinstance(v, (list, tuple)):
            return all(ok(x) for x in v)
        return isinstance(v, dict) and all(isinstance(k, str) and ok(x) for k, x in v.items())

    for k, v in meta.items():
        if not ok(v):
            raise InputError(
                f"meta value '{k}' is a {type(v).__name__}; pass str, number, bool, None, or lists/dicts of them"
            )


def save_converted(net: CaffeNet, path: str | os.PathLike, **meta) -> None:
    """Write ``net`` (its prototxt text, weights and ``meta``) to one ``torch.save`` file, atomically."""
    _check_meta(meta)
    if net.output_blob != net.default_output:
        meta.setdefault("output", net.output_blob)
    obj = {
        FORMAT_KEY: 1,
        "prototxt": net.prototxt,
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
        "meta": meta,
    }
    from cnnvis.io.files import save_torch

    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise InputError(f"cannot write '{path}': folder '{folder}' is missing or not writable; pick a writable folder")
    save_torch(path, obj)


def load_converted(path: str | os.PathLike) -> CaffeNet:
    """Read a file written by :func:`save_converted`; its ``meta`` dict becomes ``net.meta``."""
    from cnnvis.io.files import load_torch

    path = os.fspath(path)
    obj = load_torch(
        path,
        "converted Caffe file",
        "pass a file written by cnnvis convert-caffe or cnnvis.models.caffe.save_converted",
        missing_fix="write one with cnnvis convert-caffe or cnnvis.models.caffe.save_converted",
    )
    if (
        not isinstance(obj, dict)
        or obj.get(FORMAT_KEY) != 1
        or not isinstance(obj.get("prototxt"), str)
        or not isinstance(obj.get("state_dict"), dict)
    ):
        raise InputError(
            f"'{path}' is not a converted Caffe net; pass a file written by cnnvis.models.caffe.save_converted"
        )
    meta = dict(obj.get("meta") or {})
    net = CaffeNet(
        parse_prototxt(obj["prototxt"], f"the prototxt stored in '{path}'"),
        obj["state_dict"],
        output=meta.get("output"),
    )
    net.prototxt = obj["prototxt"]
    net.meta = meta
    return net
