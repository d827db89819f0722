"""Caffe's protobuf messages, built at run time: no Caffe install and no generated ``_pb2`` file.

The subset of BVLC ``src/caffe/proto/caffe.proto`` (package ``caffe``, proto2) that inference
needs is declared below as Python data with BVLC's exact field numbers, turned into a
``FileDescriptorProto`` and registered in a private ``DescriptorPool``, so it never clashes with
another ``caffe.proto`` a user may have loaded.

Declared: ``NetParameter`` (``layer`` = 100, legacy ``layers`` = 2, ``input``/``input_shape``/
``input_dim``), ``LayerParameter``, the legacy ``V1LayerParameter`` (its ``LayerType`` enum and its
own field numbers: ``blobs`` = 6, ``convolution_param`` = 10, ...), ``BlobProto`` / ``BlobShape``,
``NetState`` / ``NetStateRule`` / ``ParamSpec`` / ``FillerParameter`` and the ``*_param``
messages of every layer type :mod:`cnnvis.models.caffe.convert` runs. Fields left out (``engine``,
``transform_param``, data-layer and loss parameters, ...) are skipped as unknown fields by
:mod:`cnnvis.models.caffe.reader`: binary parsing keeps them as unknown bytes, text parsing is told to
allow them. Integer fields use BVLC's wire-compatible types (every int kind is a varint on the
wire), and scalar lists Caffe writes packed are declared packed.
"""

from __future__ import annotations

from functools import cache

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "caffe"
_FD = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "double": _FD.TYPE_DOUBLE,
    "float": _FD.TYPE_FLOAT,
    "int64": _FD.TYPE_INT64,
    "uint64": _FD.TYPE_UINT64,
    "int32": _FD.TYPE_INT32,
    "uint32": _FD.TYPE_UINT32,
    "bool": _FD.TYPE_BOOL,
    "string": _FD.TYPE_STRING,
    "bytes": _FD.TYPE_BYTES,
}

# Field spec: (name, number, type, label, default). label: "" optional, "r" repeated, "p" packed
# repeated. type: a scalar above, an enum (nested in the message or top-level) or a message name.
_TOP_ENUMS = {"Phase": [("TRAIN", 0), ("TEST", 1)]}

_MESSAGES: dict[str, tuple[list[tuple], dict[str, list[tuple[str, int]]]]] = {
    "BlobShape": ([("dim", 1, "int64", "p", None)], {}),
    "BlobProto": (
        [
            ("shape", 7, "BlobShape", "", None),
            ("data", 5, "float", "p", None),
            ("diff", 6, "float", "p", None),
            ("double_data", 8, "double", "p", None),
            ("double_diff", 9, "double", "p", None),
            ("num", 1, "int32", "", "0"),
            ("channels", 2, "int32", "", "0"),
            ("height", 3, "int32", "", "0"),
            ("width", 4, "int32", "", "0"),
        ],
        {},
    ),
    "BlobProtoVector": ([("blobs", 1, "BlobProto", "r", None)], {}),
    "FillerParameter": (
        [
            ("type", 1, "string", "", "constant"),
            ("value", 2, "float", "", "0"),
            ("min", 3, "float", "", "0"),
            ("max", 4, "float", "", "1"),
            ("mean", 5, "float", "", "0"),
            ("std", 6, "float", "", "1"),
            ("sparse", 7, "int32", "", "-1"),
            ("variance_norm", 8, "VarianceNorm", "", "FAN_IN"),
        ],
        {"VarianceNorm": [("FAN_IN", 0), ("FAN_OUT", 1), ("AVERAGE", 2)]},
    ),
    "NetParameter": (
        [
            ("name", 1, "string", "", None),
            ("input", 3, "string", "r", None),
            ("input_shape", 8, "BlobShape", "r", None),
            ("input_dim", 4, "int32", "r", None),
            ("force_backward", 5, "bool", "", "false"),
            ("state", 6, "NetState", "", None),
            ("debug_info", 7, "bool", "", "false"),
            ("layer", 100, "LayerParameter", "r", None),
            ("layers", 2, "V1LayerParameter", "r", None),
        ],
        {},
    ),
    "NetState": (
        [("phase", 1, "Phase", "", "TEST"), ("level", 2, "int32", "", "0"), ("stage", 3, "string", "r", None)],
        {},
    ),
    "NetStateRule": (
        [
            ("phase", 1, "Phase", "", None),
            ("min_level", 2, "int32", "", None),
            ("max_level", 3, "int32", "", None),
            ("stage", 4, "string", "r", None),
            ("not_stage", 5, "string", "r", None),
        ],
        {},
    ),
    "ParamSpec": (
        [
            ("name", 1, "string", "", None),
            ("share_mode", 2, "DimCheckMode", "", None),
            ("lr_mult", 3, "float", "", "1"),
            ("decay_mult", 4, "float", "", "1"),
        ],
        {"DimCheckMode": [("STRICT", 0), ("PERMISSIVE", 1)]},
    ),
    "LayerParameter": (
        [
            ("name", 1, "string", "", None),
            ("type", 2, "string", "", None),
            ("bottom", 3, "string", "r", None),
            ("top", 4, "string", "r", None),
            ("phase", 10, "Phase", "", None),
            ("loss_weight", 5, "float", "r", None),
            ("param", 6, "ParamSpec", "r", None),
            ("blobs", 7, "BlobProto", "r", None),
            ("propagate_down", 11, "bool", "r", None),
            ("include", 8, "NetStateRule", "r", None),
            ("exclude", 9, "NetStateRule", "r", None),
            ("batch_norm_param", 139, "BatchNormParameter", "", None),
            ("bias_param", 141, "BiasParameter", "", None),
            ("concat_param", 104, "ConcatParameter", "", None),
            ("convolution_param", 106, "ConvolutionParameter", "", None),
            ("crop_param", 144, "CropParameter", "", None),
            ("dropout_param", 108, "DropoutParameter", "", None),
            ("eltwise_param", 110, "EltwiseParameter", "", None),
            ("elu_param", 140, "ELUParameter", "", None),
            ("flatten_param", 135, "FlattenParameter", "", None),
            ("inner_product_param", 117, "InnerProductParameter", "", None),
            ("input_param", 143, "InputParameter", "", None),
            ("lrn_param", 118, "LRNParameter", "", None),
            ("pooling_param", 121, "PoolingParameter", "", None),
            ("power_param", 122, "PowerParameter", "", None),
            ("prelu_param", 131, "PReLUParameter", "", None),
            ("relu_param", 123, "ReLUParameter", "", None),
            ("reshape_param", 133, "ReshapeParameter", "", None),
            ("scale_param", 142, "ScaleParameter", "", None),
            ("softmax_param", 125, "SoftmaxParameter", "", None),
            ("slice_param", 126, "SliceParameter", "", None),
        ],
        {},
    ),
    "V1LayerParameter": (
        [
            ("bottom", 2, "string", "r", None),
            ("top", 3, "string", "r", None),
            ("name", 4, "string", "", None),
            ("include", 32, "NetStateRule", "r", None),
            ("exclude", 33, "NetStateRule", "r", None),
            ("type", 5, "LayerType", "", None),
            ("blobs", 6, "BlobProto", "r", None),
            ("param", 1001, "string", "r", None),
            ("blobs_lr", 7, "float", "r", None),
            ("weight_decay", 8, "float", "r", None),
            ("loss_weight", 35, "float", "r", None),
            ("concat_param", 9, "ConcatParameter", "", None),
            ("convolution_param", 10, "ConvolutionParameter", "", None),
            ("dropout_param", 12, "DropoutParameter", "", None),
            ("eltwise_param", 24, "EltwiseParameter", "", None),
            ("inner_product_param", 17, "InnerProductParameter", "", None),
            ("lrn_param", 18, "LRNParameter", "", None),
            ("pooling_param", 19, "PoolingParameter", "", None),
            ("power_param", 21, "PowerParameter", "", None),
            ("relu_param", 30, "ReLUParameter", "", None),
            ("softmax_param", 39, "SoftmaxParameter", "", None),
            ("slice_param", 31, "SliceParameter", "", None),
        ],
        {
            "LayerType": [
                ("NONE", 0),
                ("ABSVAL", 35),
                ("ACCURACY", 1),
                ("ARGMAX", 30),
                ("BNLL", 2),
                ("CONCAT", 3),
                ("CONTRASTIVE_LOSS", 37),
                ("CONVOLUTION", 4),
                ("DATA", 5),
                ("DECONVOLUTION", 39),
                ("DROPOUT", 6),
                ("DUMMY_DATA", 32),
                ("EUCLIDEAN_LOSS", 7),
                ("ELTWISE", 25),
                ("EXP", 38),
                ("FLATTEN", 8),
                ("HDF5_DATA", 9),
                ("HDF5_OUTPUT", 10),
                ("HINGE_LOSS", 28),
                ("IM2COL", 11),
                ("IMAGE_DATA", 12),
                ("INFOGAIN_LOSS", 13),
                ("INNER_PRODUCT", 14),
                ("LRN", 15),
                ("MEMORY_DATA", 29),
                ("MULTINOMIAL_LOGISTIC_LOSS", 16),
                ("MVN", 34),
                ("POOLING", 17),
                ("POWER", 26),
                ("RELU", 18),
                ("SIGMOID", 19),
                ("SIGMOID_CROSS_ENTROPY_LOSS", 27),
                ("SILENCE", 36),
                ("SOFTMAX", 20),
                ("SOFTMAX_LOSS", 21),
                ("SPLIT", 22),
                ("SLICE", 33),
                ("TANH", 23),
                ("WINDOW_DATA", 24),
                ("THRESHOLD", 31),
            ]
        },
    ),
    "BatchNormParameter": (
        [
            ("use_global_stats", 1, "bool", "", None),
            ("moving_average_fraction", 2, "float", "", "0.999"),
            ("eps", 3, "float", "", "1e-05"),
        ],
        {},
    ),
    "BiasParameter": (
        [
            ("axis", 1, "int32", "", "1"),
            ("num_axes", 2, "int32", "", "1"),
            ("filler", 3, "FillerParameter", "", None),
        ],
        {},
    ),
    "ConcatParameter": ([("axis", 2, "int32", "", "1"), ("concat_dim", 1, "uint32", "", "1")], {}),
    "ConvolutionParameter": (
        [
            ("num_output", 1, "uint32", "", None),
            ("bias_term", 2, "bool", "", "true"),
            ("pad", 3, "uint32", "r", None),
            ("kernel_size", 4, "uint32", "r", None),
            ("stride", 6, "uint32", "r", None),
            ("dilation", 18, "uint32", "r", None),
            ("pad_h", 9, "uint32", "", "0"),
            ("pad_w", 10, "uint32", "", "0"),
            ("kernel_h", 11, "uint32", "", None),
            ("kernel_w", 12, "uint32", "", None),
            ("stride_h", 13, "uint32", "", None),
            ("stride_w", 14, "uint32", "", None),
            ("group", 5, "uint32", "", "1"),
            ("weight_filler", 7, "FillerParameter", "", None),
            ("bias_filler", 8, "FillerParameter", "", None),
            ("axis", 16, "int32", "", "1"),
            ("force_nd_im2col", 17, "bool", "", "false"),
        ],
        {},
    ),
    "CropParameter": ([("axis", 1, "int32", "", "2"), ("offset", 2, "uint32", "r", None)], {}),
    "DropoutParameter": ([("dropout_ratio", 1, "float", "", "0.5")], {}),
    "EltwiseParameter": (
        [
            ("operation", 1, "EltwiseOp", "", "SUM"),
            ("coeff", 2, "float", "r", None),
            ("stable_prod_grad", 3, "bool", "", "true"),
        ],
        {"EltwiseOp": [("PROD", 0), ("SUM", 1), ("MAX", 2)]},
    ),
    "ELUParameter": ([("alpha", 1, "float", "", "1")], {}),
    "FlattenParameter": ([("axis", 1, "int32", "", "1"), ("end_axis", 2, "int32", "", "-1")], {}),
    "InnerProductParameter": (
        [
            ("num_output", 1, "uint32", "", None),
            ("bias_term", 2, "bool", "", "true"),
            ("weight_filler", 3, "FillerParameter", "", None),
            ("bias_filler", 4, "FillerParameter", "", None),
            ("axis", 5, "int32", "", "1"),
            ("transpose", 6, "bool", "", "false"),
        ],
        {},
    ),
    "InputParameter": ([("shape", 1, "BlobShape", "r", None)], {}),
    "LRNParameter": (
        [
            ("local_size", 1, "uint32", "", "5"),
            ("alpha", 2, "float", "", "1"),
            ("beta", 3, "float", "", "0.75"),
            ("norm_region", 4, "NormRegion", "", "ACROSS_CHANNELS"),
            ("k", 5, "float", "", "1"),
        ],
        {"NormRegion": [("ACROSS_CHANNELS", 0), ("WITHIN_CHANNEL", 1)]},
    ),
    "PoolingParameter": (
        [
            ("pool", 1, "PoolMethod", "", "MAX"),
            ("pad", 4, "uint32", "", "0"),
            ("pad_h", 9, "uint32", "", "0"),
            ("pad_w", 10, "uint32", "", "0"),
            ("kernel_size", 2, "uint32", "", None),
            ("kernel_h", 5, "uint32", "", None),
            ("kernel_w", 6, "uint32", "", None),
            ("stride", 3, "uint32", "", "1"),
            ("stride_h", 7, "uint32", "", None),
            ("stride_w", 8, "uint32", "", None),
            ("global_pooling", 12, "bool", "", "false"),
            ("round_mode", 13, "RoundMode", "", "CEIL"),
        ],
        {"PoolMethod": [("MAX", 0), ("AVE", 1), ("STOCHASTIC", 2)], "RoundMode": [("CEIL", 0), ("FLOOR", 1)]},
    ),
    "PowerParameter": (
        [("power", 1, "float", "", "1"), ("scale", 2, "float", "", "1"), ("shift", 3, "float", "", "0")],
        {},
    ),
    "PReLUParameter": ([("filler", 1, "FillerParameter", "", None), ("channel_shared", 2, "bool", "", "false")], {}),
    "ReLUParameter": ([("negative_slope", 1, "float", "", "0")], {}),
    "ReshapeParameter": (
        [
            ("shape", 1, "BlobShape", "", None),
            ("axis", 2, "int32", "", "0"),
            ("num_axes", 3, "int32", "", "-1"),
        ],
        {},
    ),
    "ScaleParameter": (
        [
            ("axis", 1, "int32", "", "1"),
            ("num_axes", 2, "int32", "", "1"),
            ("filler", 3, "FillerParameter", "", None),
            ("bias_term", 4, "bool", "", "false"),
            ("bias_filler", 5, "FillerParameter", "", None),
        ],
        {},
    ),
    "SliceParameter": (
        [
            ("axis", 3, "int32", "", "1"),
            ("slice_point", 2, "uint32", "r", None),
            ("slice_dim", 1, "uint32", "", "1"),
        ],
        {},
    ),
    "SoftmaxParameter": ([("axis", 2, "int32", "", "1")], {}),
}


def _add_enum(container, name: str, values: list[tuple[str, int]]) -> None:
    enum = container.enum_type.add(name=name)
    for value_name, number in values:
        enum.value.add(name=value_name, number=number)


def _type_name(message: str, type_: str) -> tuple[int, str | None]:
    if type_ in _SCALARS:
        return _SCALARS[type_], None
    if type_ in _MESSAGES[message][1]:
        return _FD.TYPE_ENUM, f".{PACKAGE}.{message}.{type_}"
    if type_ in _TOP_ENUMS:
        return _FD.TYPE_ENUM, f".{PACKAGE}.{type_}"
    if type_ in _MESSAGES:
        return _FD.TYPE_MESSAGE, f".{PACKAGE}.{type_}"
    raise KeyError(f"caffe proto spec: unknown type {type_} in {message}")


def file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The ``caffe.proto`` subset as a ``FileDescriptorProto`` (proto2, package ``caffe``)."""
    fdp = descriptor_pb2.FileDescriptorProto(name="cnnvis_caffe.proto", package=PACKAGE, syntax="proto2")
    for name, values in _TOP_ENUMS.items():
        _add_enum(fdp, name, values)
    for message, (fields, enums) in _MESSAGES.items():
        msg = fdp.message_type.add(name=message)
        for enum_name, values in enums.items():
            _add_enum(msg, enum_name, values)
        for name, number, type_, label, default in fields:
            kind, type_name = _type_name(message, type_)
            field = msg.field.add(
                name=name, number=number, type=kind, label=_FD.LABEL_REPEATED if label else _FD.LABEL_OPTIONAL
            )
            if type_name:
                field.type_name = type_name
            if default is not None:
                field.default_value = default
            if label == "p":
                field.options.packed = True
    return fdp


@cache
def _pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()  # private: never collides with a user's caffe_pb2
    pool.Add(file_descriptor())
    return pool


@cache
def message_class(name: str) -> type:
    """The message class ``caffe.<name>`` (e.g. ``"NetParameter"``, ``"BlobProto"``)."""
    desc = _pool().FindMessageTypeByName(f"{PACKAGE}.{name}")
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(_pool()).GetPrototype(desc)  # protobuf < 4.22


def NetParameter(**kwargs):  # noqa: N802 - reads like the message class it builds
    """A new, empty (or keyword-initialized) ``caffe.NetParameter``."""
    return message_class("NetParameter")(**kwargs)


def LayerParameter(**kwargs):  # noqa: N802
    """A new ``caffe.LayerParameter``."""
    return message_class("LayerParameter")(**kwargs)


def BlobProto(**kwargs):  # noqa: N802
    """A new ``caffe.BlobProto``."""
    return message_class("BlobProto")(**kwargs)
