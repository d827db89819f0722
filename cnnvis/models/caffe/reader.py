"""Read Caffe nets: ``.prototxt`` text and ``.caffemodel`` binaries, into one layer list.

``read_prototxt`` / ``read_caffemodel`` return the ``caffe.NetParameter`` message (see
:mod:`cnnvis.models.caffe.proto`); :func:`net_layers` turns either into :class:`CaffeLayer` records,
the same for new-format nets (``layer { type: "Convolution" }``) and legacy V1 nets
(``layers { type: CONVOLUTION }``, e.g. the 2014 BVLC AlexNet caffemodel): V1 enum types become
the new type strings and V1 ``*_param`` messages move to the ``LayerParameter`` fields of the
same name, as Caffe's own ``UpgradeV1LayerParameter`` does. Blobs become float32 numpy arrays
shaped by ``BlobShape``, or by the legacy ``num``/``channels``/``height``/``width``.

Every failure is an :class:`~cnnvis.errors.InputError` with one line naming the file and the fix.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

import numpy as np
from google.protobuf import message as pb_message
from google.protobuf import text_format

from cnnvis.errors import InputError
from cnnvis.models.caffe import proto

# V1 enum name -> new-format type string (Caffe's UpgradeV1LayerType).
V1_TYPES = {
    "ABSVAL": "AbsVal",
    "ACCURACY": "Accuracy",
    "ARGMAX": "ArgMax",
    "BNLL": "BNLL",
    "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss",
    "CONVOLUTION": "Convolution",
    "DATA": "Data",
    "DECONVOLUTION": "Deconvolution",
    "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData",
    "EUCLIDEAN_LOSS": "EuclideanLoss",
    "ELTWISE": "Eltwise",
    "EXP": "Exp",
    "FLATTEN": "Flatten",
    "HDF5_DATA": "HDF5Data",
    "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss",
    "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss",
    "INNER_PRODUCT": "InnerProduct",
    "LRN": "LRN",
    "MEMORY_DATA": "MemoryData",
    "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN",
    "POOLING": "Pooling",
    "POWER": "Power",
    "RELU": "ReLU",
    "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss",
    "SILENCE": "Silence",
    "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss",
    "SPLIT": "Split",
    "SLICE": "Slice",
    "TANH": "TanH",
    "WINDOW_DATA": "WindowData",
    "THRESHOLD": "Threshold",
    "NONE": "",
}
_V1_PARAMS = (
    "concat_param",
    "convolution_param",
    "dropout_param",
    "eltwise_param",
    "inner_product_param",
    "lrn_param",
    "pooling_param",
    "power_param",
    "relu_param",
    "softmax_param",
    "slice_param",
)
_TEST = 1  # caffe.Phase.TEST: inference nets run in the TEST phase


@dataclass
class CaffeLayer:
    """One layer of a Caffe net, whatever the file format.

    Attributes:
        name: the Caffe layer name (``conv5_1``, ``inception_4c/output``).
        type: the new-format type string (``Convolution``, ``ReLU``; V1 enums are translated).
        bottoms, tops: blob names read and written; ``top == bottom`` marks an in-place layer.
        param: a ``caffe.LayerParameter`` holding the layer's ``*_param`` messages (for V1 layers,
            a converted copy).
        blobs: learned parameters, float32 arrays in Caffe's layout (e.g. convolution weights
            (out, in / group, kh, kw), biases (out,)); empty for a prototxt.
        in_test_phase: False when the layer's include/exclude rules drop it at test time.
    """

    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    param: object
    blobs: list[np.ndarray] = field(default_factory=list)
    in_test_phase: bool = True


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _check_file(path: str | os.PathLike, what: str, fix: str) -> str:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"{what} not found: '{path}'; {fix}")
    return path


# One token the nesting scan cares about: a quoted string (escapes allowed), a # comment, or a bracket.
# Text format opens a message with { or <; strings and comments may hold brackets that do not count.
_NESTING_TOKENS = re.compile(r""" "(?:[^"\\\n]|\\.)*" | '(?:[^'\\\n]|\\.)*' | \#[^\n]* | [{}<>] """, re.VERBOSE)
MAX_NESTING = 100  # real nets nest 4 deep (layer { convolution_param { weight_filler { } } })


def nesting_depth(text: str) -> int:
    """The deepest ``{``/``<`` nesting of Caffe text format, outside strings and comments.

    A cheap scan run before protobuf's recursive parser, which would otherwise overflow Python's
    stack on a file nested thousands deep.
    """
    depth = deepest = 0
    for m in _NESTING_TOKENS.finditer(text):
        token = m.group()
        if token in "{<":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "}>":
            depth = max(depth - 1, 0)  # an unbalanced closer is protobuf's syntax error to report
    return deepest


def _too_deep(source: str) -> InputError:
    return InputError(
        f"{source} nests messages more than {MAX_NESTING} deep; a Caffe net nests a few levels "
        "(layer { convolution_param { ... } }): fix the file's braces"
    )


def parse_prototxt(text: str, source: str = "the prototxt"):
    """Parse Caffe text format into a ``NetParameter``; fields cnnvis does not model are skipped."""
    if nesting_depth(text) > MAX_NESTING:
        raise _too_deep(source)
    net = proto.NetParameter()
    try:
        text_format.Parse(text, net, allow_unknown_field=True, allow_unknown_extension=True)
    except text_format.ParseError as e:
        line, column = e.GetLine(), e.GetColumn()
        where = f" at line {line}, column {column}" if line else ""
        detail = re.sub(r"^\d+:\d+ : ", "", _one_line(e))  # the position is already in `where`
        detail = detail if len(detail) <= 200 else detail[:197] + "..."  # protobuf may quote a whole line
        raise InputError(
            f"cannot parse {source}{where}: {detail}; fix the Caffe text syntax "
            '(e.g. layer { name: "conv1" type: "Convolution" ... })'
        ) from None
    except RecursionError:  # a fallback: the scan above should have refused it
        raise _too_deep(source) from None
    return net


def read_prototxt_text(path: str | os.PathLike) -> str:
    """The text of a ``.prototxt`` file (UTF-8, a BOM allowed), refusing binary files."""
    path = _check_file(path, "prototxt file", "pass the network's deploy .prototxt")
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:  # a stray Latin-1 comment is harmless
            text = f.read()
    except OSError as e:
        raise InputError(f"cannot read prototxt '{path}' ({e.strerror}); check the file's permissions") from None
    if "\x00" in text or text.count("\ufffd") > max(16, len(text) // 100):
        raise InputError(f"'{path}' is not a text prototxt (binary data); pass the .prototxt, not the .caffemodel")
    return text


def read_prototxt(path: str | os.PathLike):
    """Read a Caffe ``.prototxt`` (text format) into a ``caffe.NetParameter``.

    Raises:
        InputError: the file is missing, not text, or has a syntax error (its line is named).
    """
    return parse_prototxt(read_prototxt_text(path), f"prototxt '{os.fspath(path)}'")


def read_caffemodel(path: str | os.PathLike):
    """Read a Caffe ``.caffemodel`` (binary ``NetParameter``, new or V1 format).

    Raises:
        InputError: the file is missing, truncated, not a caffemodel, or holds no layers.
    """
    path = _check_file(path, "caffemodel file", "pass the trained .caffemodel that goes with the prototxt")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InputError(f"cannot read caffemodel '{path}' ({e.strerror}); check the file's permissions") from None
    net = proto.NetParameter()
    try:
        net.ParseFromString(data)
    except (pb_message.DecodeError, RuntimeError, ValueError) as e:  # RecursionError is a RuntimeError
        raise InputError(
            f"cannot decode caffemodel '{path}' ({_one_line(e) or 'invalid protobuf'}): the file is truncated or not a "
            "Caffe binary model; download it again or pass the .caffemodel (not the .prototxt)"
        ) from None
    if not len(net.layer) and not len(net.layers):
        raise InputError(
            f"caffemodel '{path}' holds no layers; pass a trained .caffemodel (a binary Caffe NetParameter)"
        )
    return net


def blob_array(blob, where: str = "a blob") -> np.ndarray:
    """A ``BlobProto``'s data as a float32 array, shaped by ``shape`` or legacy num/channels/height/width."""
    if blob.HasField("shape"):
        shape = tuple(int(d) for d in blob.shape.dim)
    elif any(blob.HasField(k) for k in ("num", "channels", "height", "width")):
        shape = (blob.num, blob.channels, blob.height, blob.width)
    else:
        shape = None
    values = blob.double_data if len(blob.double_data) else blob.data
    arr = np.array(values, dtype=np.float32)
    if shape is None:
        return arr
    # Python ints: numpy's int64 product wraps around for absurd dims, and could match by accident.
    if min(shape, default=0) < 0 or math.prod(shape) != arr.size:
        raise InputError(
            f"{where} has {arr.size} values but shape {shape}: the caffemodel is corrupt; download it again"
        )
    return arr.reshape(shape)


def _upgrade_v1(v1):
    layer = proto.LayerParameter(name=v1.name)
    layer.bottom.extend(v1.bottom)
    layer.top.extend(v1.top)
    layer.include.extend(v1.include)
    layer.exclude.extend(v1.exclude)
    layer.type = V1_TYPES.get(proto.message_class("V1LayerParameter").LayerType.Name(v1.type), "")
    for name in _V1_PARAMS:
        if v1.HasField(name):
            getattr(layer, name).CopyFrom(getattr(v1, name))
    return layer


def _meets(rule, level: int = 0) -> bool:
    """Caffe's StateMeetsRule for the inference state: phase TEST, level 0, no stages."""
    if rule.HasField("phase") and rule.phase != _TEST:
        return False
    if rule.HasField("min_level") and level < rule.min_level:
        return False
    if rule.HasField("max_level") and level > rule.max_level:
        return False
    return not len(rule.stage)  # the inference state has no stages (not_stage rules always hold)


def _in_test_phase(layer) -> bool:
    if len(layer.include):
        return any(_meets(r) for r in layer.include)
    return not any(_meets(r) for r in layer.exclude)


def net_layers(net, source: str = "the net") -> list[CaffeLayer]:
    """The layers of ``net`` (new-format ``layer`` or legacy V1 ``layers``) as :class:`CaffeLayer` records."""
    out = []
    use_v1 = not len(net.layer) and len(net.layers)
    for i, raw in enumerate(net.layers if use_v1 else net.layer):
        layer = _upgrade_v1(raw) if use_v1 else raw
        name = layer.name
        blobs = [blob_array(b, f"blob {j} of layer '{name}' in {source}") for j, b in enumerate(raw.blobs)]
        out.append(
            CaffeLayer(
                name=name,
                type=layer.type,
                bottoms=list(layer.bottom),
                tops=list(layer.top),
                param=layer,
                blobs=blobs,
                in_test_phase=_in_test_phase(layer),
            )
        )
    return out


def net_inputs(net) -> list[tuple[str, tuple[int, ...] | None]]:
    """Inputs declared on the net itself (``input`` with ``input_shape`` or ``input_dim``): (blob, shape or None)."""
    names = list(net.input)
    if len(net.input_shape):
        shapes = [tuple(int(d) for d in s.dim) for s in net.input_shape]
        if len(shapes) == 1 and len(names) > 1:
            shapes *= len(names)
    elif len(net.input_dim) and names and len(net.input_dim) % len(names) == 0:
        k = len(net.input_dim) // len(names)
        dims = [int(d) for d in net.input_dim]
        shapes = [tuple(dims[i * k : (i + 1) * k]) for i in range(len(names))]
    else:
        shapes = []
    return [(n, shapes[i] if i < len(shapes) else None) for i, n in enumerate(names)]


def weights_by_layer(net, source: str = "the caffemodel") -> dict[str, list[np.ndarray]]:
    """Layer name -> its blobs, for the layers of a caffemodel that have any."""
    return {layer.name: layer.blobs for layer in net_layers(net, source) if layer.blobs}
