"""One builder per Caffe layer type: (the layer, its input shapes, its weights) -> a torch module.

:data:`BUILDERS` maps Caffe's type strings to builders; :data:`SUPPORTED` lists every type
:class:`cnnvis.models.caffe.convert.CaffeNet` runs (Input and Silence need no module). A builder with
parameters calls :meth:`BuildContext.reserve` with their shapes before constructing its module:
the pre-flight that turns a prototxt asking for terabytes into one line.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cnnvis.errors import InputError
from cnnvis.models.caffe import proto
from cnnvis.models.caffe.layers import (
    CaffeBatchNorm,
    CaffeBias,
    CaffeConcat,
    CaffeCrop,
    CaffeEltwise,
    CaffeFlatten,
    CaffeInnerProduct,
    CaffeLRNWithin,
    CaffePooling,
    CaffePower,
    CaffeReshape,
    CaffeScale,
    CaffeSlice,
    CaffeSplit,
)
from cnnvis.models.caffe.reader import CaffeLayer

MAX_DIM = 2**31 - 1  # no real layer comes near; far beyond it torch's size arithmetic overflows
FLOAT_BYTES = 4  # parameters are float32


def available_bytes() -> int | None:
    """Free CPU memory in bytes (MemAvailable), or None if unknown.

    A local copy of the pipeline's helper: models/ sits below pipeline/ and may not import it.
    """
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: int) -> str:
    if n >= 1e8:
        return f"{n / 1e9:.1f} GB"
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n:,} bytes"


class ParamBudget:
    """The memory a net's parameters may take, spent layer by layer before each layer allocates.

    ``available`` None checks only the shapes: no memory figure is known, or the parameters
    already exist (a state dict assigned in place allocates nothing).
    """

    def __init__(self, available: int | None):
        self.available = available
        self.used = 0

    def take(self, count: int, ctx: BuildContext) -> None:
        need = count * FLOAT_BYTES
        self.used += need
        if self.available is not None and self.used > self.available:
            so_far = f", {_gb(self.used)} with the layers before it" if self.used > need else ""
            raise ctx.fail(
                f"its {count:,} parameters need {_gb(need)}{so_far}, but {_gb(self.available)} of memory is available",
                "fix num_output / kernel_size in the prototxt, or free memory",
            )


@dataclass
class BuildContext:
    """What a builder knows about one layer."""

    layer: CaffeLayer
    in_shapes: list[tuple[int, ...] | None]
    blobs: list[np.ndarray] | None  # from the caffemodel, when weights were given and the layer has any
    where: str  # "layer 'conv1' (Convolution) in deploy.prototxt", for messages
    budget: ParamBudget | None = None  # None: no pre-flight (a builder called on its own)

    def fail(self, what: str, fix: str) -> InputError:
        return InputError(f"{self.where}: {what}; {fix}")

    def reserve(self, *shapes: tuple[int, ...] | None) -> None:
        """Pre-flight of the parameters' ``shapes`` (Python ints, nothing allocated): absurd dims and memory.

        Called by each builder before it constructs its module, so a prototxt asking for a
        terabyte is one line instead of an allocator error (or the OOM killer).
        """
        shapes = [tuple(int(d) for d in s) for s in shapes if s is not None]
        for shape in shapes:
            bad = [d for d in shape if not 0 < d <= MAX_DIM]
            if bad:
                raise self.fail(
                    f"a parameter of shape {shape} has dimension {bad[0]}",
                    f"fix num_output / kernel_size / the input shape (each from 1 to {MAX_DIM})",
                )
        if self.budget is not None:
            self.budget.take(sum(math.prod(s) for s in shapes), self)

    def dim(self, bottom: int, axis: int) -> int | None:
        s = self.in_shapes[bottom] if bottom < len(self.in_shapes) else None
        if s is None:
            return None
        axis = axis if axis >= 0 else axis + len(s)
        return s[axis] if 0 <= axis < len(s) else None

    def need(self, value, what: str):
        """``value``, or an InputError when neither the input shape nor the weights gave it."""
        if value is None:
            raise self.fail(
                f"cannot tell its {what}", "declare the input shape (input_shape or an Input layer) or pass weights"
            )
        return value


def _plain(keys: list[str], transforms: dict | None = None):
    """A loader mapping blob i to state key ``keys[i]`` (reshaped to the module's shape)."""

    def load(blobs: list[np.ndarray], target: dict[str, torch.Tensor], where: str) -> dict[str, torch.Tensor]:
        if len(blobs) != len(keys):
            raise InputError(
                f"{where} has {len(blobs)} weight blobs in the caffemodel, expected {len(keys)} ({', '.join(keys)}); "
                "pass the caffemodel trained with this prototxt"
            )
        state = {}
        for key, arr in zip(keys, blobs):
            t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
            want = tuple(target[key].shape)
            if transforms and key in transforms:
                t = transforms[key](t) if t.numel() == math.prod(want) else t
            if t.numel() != math.prod(want):
                raise InputError(
                    f"{where}: its {key} blob has shape {tuple(arr.shape)} in the caffemodel, expected {want}; "
                    "pass the caffemodel trained with this prototxt"
                )
            state[key] = t.reshape(want)
        return state

    return load


def _pair(values, h, w, cp, default: int, ctx: BuildContext, what: str) -> tuple[int, int]:
    if cp.HasField(h) or cp.HasField(w):
        return int(getattr(cp, h)), int(getattr(cp, w))
    values = [int(v) for v in values]
    if not values:
        return default, default
    if len(values) in (1, 2):
        return (values[0], values[-1])
    raise ctx.fail(f"{what} has {len(values)} values", "cnnvis converts 2-D layers: give 1 or 2 values")


def _conv_geometry(ctx: BuildContext):
    cp = ctx.layer.param.convolution_param
    if cp.axis != 1:
        raise ctx.fail(f"convolution axis {cp.axis} is not supported", "use axis 1 (N, C, H, W)")
    kernel = _pair(cp.kernel_size, "kernel_h", "kernel_w", cp, 0, ctx, "kernel_size")
    if min(kernel) <= 0:
        raise ctx.fail("has no kernel size", "set kernel_size (or kernel_h and kernel_w)")
    stride = _pair(cp.stride, "stride_h", "stride_w", cp, 1, ctx, "stride")
    pad = _pair(cp.pad, "pad_h", "pad_w", cp, 0, ctx, "pad")
    dilation = _dilation(cp, ctx)
    out, group = int(cp.num_output), int(cp.group)
    if out <= 0 or group <= 0 or out % group:
        raise ctx.fail(f"num_output {out} with group {group}", "set num_output to a positive multiple of group")
    return kernel, stride, pad, dilation, out, group, bool(cp.bias_term)


def _dilation(cp, ctx: BuildContext) -> tuple[int, int]:
    d = [int(v) for v in cp.dilation] or [1]
    if len(d) > 2:
        raise ctx.fail(f"dilation has {len(d)} values", "cnnvis converts 2-D convolutions: give 1 or 2 values")
    return d[0], d[-1]


def _build_convolution(ctx: BuildContext, transposed: bool = False):
    kernel, stride, pad, dilation, out, group, bias = _conv_geometry(ctx)
    in_c = ctx.dim(0, 1)
    if in_c is None and ctx.blobs:
        per = (out // group if transposed else out) * kernel[0] * kernel[1]
        in_c = ctx.blobs[0].size // per * (1 if transposed else group)
    in_c = int(ctx.need(in_c, "input channels"))
    if in_c % group:
        raise ctx.fail(f"{in_c} input channels do not split into {group} groups", "fix group or the input")
    weight = (in_c, out // group, *kernel) if transposed else (out, in_c // group, *kernel)
    ctx.reserve(weight, (out,) if bias else None)
    cls = nn.ConvTranspose2d if transposed else nn.Conv2d
    module = cls(in_c, out, kernel, stride=stride, padding=pad, dilation=dilation, groups=group, bias=bias)
    return module, _plain(["weight", "bias"] if bias else ["weight"])


def _build_inner_product(ctx: BuildContext):
    ip = ctx.layer.param.inner_product_param
    out, axis = int(ip.num_output), int(ip.axis)
    s = ctx.in_shapes[0]
    if s is not None:
        a = axis if axis >= 0 else axis + len(s)
        in_f = math.prod(s[a:])
    elif ctx.blobs:
        in_f = ctx.blobs[0].size // max(out, 1)
    else:
        in_f = None
    in_f = int(ctx.need(in_f, "input size"))
    ctx.reserve((out, in_f), (out,) if ip.bias_term else None)
    module = CaffeInnerProduct(in_f, out, bias=bool(ip.bias_term), axis=axis)
    transforms = {"weight": lambda t: t.reshape(in_f, out).t()} if ip.transpose else None
    return module, _plain(["weight", "bias"] if ip.bias_term else ["weight"], transforms)


def _build_pooling(ctx: BuildContext):
    pp = ctx.layer.param.pooling_param
    method = proto.message_class("PoolingParameter").PoolMethod.Name(pp.pool)
    if method not in ("MAX", "AVE"):
        raise ctx.fail(f"{method} pooling is not supported", "use MAX or AVE pooling")
    if pp.global_pooling:
        kernel = None
    elif pp.HasField("kernel_h") or pp.HasField("kernel_w"):
        kernel = (int(pp.kernel_h), int(pp.kernel_w))
    elif pp.HasField("kernel_size"):
        kernel = (int(pp.kernel_size),) * 2
    else:
        raise ctx.fail("has no kernel size", "set kernel_size (or global_pooling: true)")
    pad = (int(pp.pad_h), int(pp.pad_w)) if pp.HasField("pad_h") or pp.HasField("pad_w") else (int(pp.pad),) * 2
    stride = (
        (int(pp.stride_h), int(pp.stride_w))
        if pp.HasField("stride_h") or pp.HasField("stride_w")
        else (int(pp.stride),) * 2
    )
    if kernel is not None and (min(kernel) <= 0 or min(stride) <= 0 or pad[0] >= kernel[0] or pad[1] >= kernel[1]):
        raise ctx.fail(
            f"kernel {kernel}, stride {stride}, pad {pad}",
            "use a positive kernel and stride and a pad smaller than the kernel",
        )
    return CaffePooling(method, kernel, stride, pad, ceil_mode=pp.round_mode == 0), None


def _build_lrn(ctx: BuildContext):
    lp = ctx.layer.param.lrn_param
    size = int(lp.local_size)
    if size % 2 == 0:
        raise ctx.fail(f"local_size {size} is even", "use an odd local_size, as Caffe requires")
    if lp.norm_region == 0:  # ACROSS_CHANNELS: torch's LocalResponseNorm is the same formula
        return nn.LocalResponseNorm(size, alpha=lp.alpha, beta=lp.beta, k=lp.k), None
    return CaffeLRNWithin(size, lp.alpha, lp.beta), None


def _build_relu(ctx: BuildContext):
    slope = float(ctx.layer.param.relu_param.negative_slope)
    return (nn.LeakyReLU(slope) if slope else nn.ReLU()), None


def _build_prelu(ctx: BuildContext):
    shared = ctx.layer.param.prelu_param.channel_shared
    n = 1 if shared else (ctx.dim(0, 1) if ctx.dim(0, 1) is not None else (ctx.blobs[0].size if ctx.blobs else None))
    n = int(ctx.need(n, "channels"))
    ctx.reserve((n,))
    return nn.PReLU(n, init=0.25), _plain(["weight"])


def _build_batch_norm(ctx: BuildContext):
    c = ctx.dim(0, 1)
    if c is None and ctx.blobs:
        c = ctx.blobs[0].size
    c = int(ctx.need(c, "channels"))
    ctx.reserve((c,), (c,))  # running mean and variance
    module = CaffeBatchNorm(c, float(ctx.layer.param.batch_norm_param.eps))

    def load(blobs, target, where):
        if len(blobs) != 3 or blobs[2].size != 1:
            raise InputError(
                f"{where} has {len(blobs)} weight blobs in the caffemodel, expected 3 (mean, variance, scale factor); "
                "pass a BVLC-format caffemodel"
            )
        factor = float(blobs[2].reshape(-1)[0])
        factor = 0.0 if factor == 0 else 1.0 / factor  # Caffe stores running sums; this is its normalization
        n = target["running_mean"].numel()
        if blobs[0].size != n or blobs[1].size != n:
            raise InputError(
                f"{where}: mean/variance have {blobs[0].size}/{blobs[1].size} values, expected {n}; "
                "pass the caffemodel trained with this prototxt"
            )
        return {
            "running_mean": torch.from_numpy(blobs[0].reshape(n) * factor),
            "running_var": torch.from_numpy(blobs[1].reshape(n) * factor),
        }

    return module, load


def _param_shape(ctx: BuildContext, axis: int, num_axes: int) -> tuple[int, ...] | None:
    s = ctx.in_shapes[0]
    if s is not None:
        a = axis if axis >= 0 else axis + len(s)
        return tuple(s[a:] if num_axes == -1 else s[a : a + num_axes])
    return tuple(ctx.blobs[0].shape) if ctx.blobs else None


def _build_scale(ctx: BuildContext):
    sp = ctx.layer.param.scale_param
    if len(ctx.layer.bottoms) > 1:  # the scale is the second input; only a bias can be learned
        shape = None
        scale_shape = (
            ctx.in_shapes[1] if ctx.in_shapes[1] is not None else (tuple(ctx.blobs[0].shape) if ctx.blobs else None)
        )
        bias_shape = tuple(ctx.need(scale_shape, "scale shape")) if sp.bias_term else None
    else:
        shape = tuple(ctx.need(_param_shape(ctx, int(sp.axis), int(sp.num_axes)), "scale shape"))
        bias_shape = shape if sp.bias_term else None
    keys = ([] if shape is None else ["weight"]) + (["bias"] if sp.bias_term else [])
    ctx.reserve(shape, bias_shape)
    return CaffeScale(shape, int(sp.axis), bias_shape), (_plain(keys) if keys else None)


def _build_bias(ctx: BuildContext):
    bp = ctx.layer.param.bias_param
    if len(ctx.layer.bottoms) > 1:
        return CaffeBias(None, int(bp.axis)), None
    shape = tuple(ctx.need(_param_shape(ctx, int(bp.axis), int(bp.num_axes)), "bias shape"))
    ctx.reserve(shape)
    return CaffeBias(shape, int(bp.axis)), _plain(["bias"])


def _build_eltwise(ctx: BuildContext):
    ep = ctx.layer.param.eltwise_param
    op = proto.message_class("EltwiseParameter").EltwiseOp.Name(ep.operation)
    coeffs = [float(c) for c in ep.coeff]
    if coeffs and (op != "SUM" or len(coeffs) != len(ctx.layer.bottoms)):
        raise ctx.fail(
            f"{len(coeffs)} coefficients for {op} of {len(ctx.layer.bottoms)} inputs",
            "give one coeff per bottom, for SUM only",
        )
    return CaffeEltwise(op, coeffs), None


def _build_concat(ctx: BuildContext):
    cp = ctx.layer.param.concat_param
    return CaffeConcat(
        int(cp.concat_dim) if cp.HasField("concat_dim") and not cp.HasField("axis") else int(cp.axis)
    ), None


def _build_slice(ctx: BuildContext):
    sp = ctx.layer.param.slice_param
    axis = int(sp.slice_dim) if sp.HasField("slice_dim") and not sp.HasField("axis") else int(sp.axis)
    points = [int(p) for p in sp.slice_point]
    if points and len(points) != len(ctx.layer.tops) - 1:
        raise ctx.fail(
            f"{len(points)} slice points for {len(ctx.layer.tops)} tops", "give one slice_point fewer than tops"
        )
    return CaffeSlice(axis, points, len(ctx.layer.tops)), None


def _build_reshape(ctx: BuildContext):
    rp = ctx.layer.param.reshape_param
    return CaffeReshape([int(d) for d in rp.shape.dim], int(rp.axis), int(rp.num_axes)), None


def _build_flatten(ctx: BuildContext):
    fp = ctx.layer.param.flatten_param
    return CaffeFlatten(int(fp.axis), int(fp.end_axis)), None


def _build_power(ctx: BuildContext):
    pp = ctx.layer.param.power_param
    return CaffePower(float(pp.power), float(pp.scale), float(pp.shift)), None


def _build_crop(ctx: BuildContext):
    cp = ctx.layer.param.crop_param
    return CaffeCrop(int(cp.axis), [int(o) for o in cp.offset]), None


ACTIVATIONS = frozenset({"ReLU", "PReLU", "ELU", "Sigmoid", "TanH"})
BUILDERS = {
    "Convolution": _build_convolution,
    "Deconvolution": lambda ctx: _build_convolution(ctx, transposed=True),
    "InnerProduct": _build_inner_product,
    "Pooling": _build_pooling,
    "LRN": _build_lrn,
    "ReLU": _build_relu,
    "PReLU": _build_prelu,
    "ELU": lambda ctx: (nn.ELU(float(ctx.layer.param.elu_param.alpha)), None),
    "Sigmoid": lambda ctx: (nn.Sigmoid(), None),
    "TanH": lambda ctx: (nn.Tanh(), None),
    "Dropout": lambda ctx: (nn.Identity(), None),
    "Softmax": lambda ctx: (nn.Softmax(dim=int(ctx.layer.param.softmax_param.axis)), None),
    "Concat": _build_concat,
    "Flatten": _build_flatten,
    "Reshape": _build_reshape,
    "Eltwise": _build_eltwise,
    "BatchNorm": _build_batch_norm,
    "Scale": _build_scale,
    "Bias": _build_bias,
    "Power": _build_power,
    "Split": lambda ctx: (CaffeSplit(), None),
    "Crop": _build_crop,
    "Slice": _build_slice,
}
SUPPORTED = tuple(sorted([*BUILDERS, "Input", "Silence"]))


def unsupported_layer(layer: CaffeLayer, source: str) -> InputError:
    """The one-line error for a layer type no builder handles, with a hint where one is known."""
    t = layer.type or "<none>"
    hint = ""
    if t.endswith("Data") or t in ("Python", "Accuracy") or t.endswith("Loss"):
        hint = " (use the deploy prototxt: an Input layer, no data, loss or accuracy layers)"
    return InputError(
        f"unsupported Caffe layer '{layer.name}' (type {t}) in {source}{hint}; supported: {', '.join(SUPPORTED)}"
    )


def meta_outputs(module: nn.Module, shapes: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """Output shapes of ``module`` for inputs of ``shapes``, computed on the meta device (no data)."""
    state = {
        k: torch.empty(v.shape, dtype=v.dtype, device="meta")
        for k, v in itertools.chain(module.named_parameters(), module.named_buffers())
    }
    args = tuple(torch.empty(s, device="meta") for s in shapes)
    with torch.no_grad():
        out = torch.func.functional_call(module, state, args)
    return [tuple(out.shape)] if isinstance(out, torch.Tensor) else [tuple(o.shape) for o in out]
