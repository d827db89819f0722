"""Caffe layer types that have no exact torch module, written out in Caffe's arithmetic.

Pooling rounds output sizes up and clips its average divisor at the padded border, LRN within a
channel, Concat, Flatten, Reshape (0 and -1 dims), Eltwise, BatchNorm with the stored scale
factor, Scale, Bias, Power, Split, Crop and Slice. Shapes follow Caffe's (N, C, H, W) axes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class CaffeInnerProduct(nn.Linear):
    """Caffe's InnerProduct: flattens axes ``axis..`` then applies ``nn.Linear`` ((B, C, H, W) -> (B, N))."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, axis: int = 1):
        super().__init__(in_features, out_features, bias=bias)
        self.axis = axis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        axis = self.axis if self.axis >= 0 else self.axis + x.dim()
        return F.linear(x.flatten(axis), self.weight, self.bias)


class CaffePooling(nn.Module):
    """Caffe's MAX / AVE pooling on (B, C, H, W), with Caffe's output size and AVE divisor.

    Output side: ``ceil((H + 2 pad - k) / stride) + 1`` (``floor`` with ``round_mode: FLOOR``),
    minus one when padding would make the last window start at or past ``H + pad``. MAX ignores
    padding; AVE sums the in-image values and divides by the window's area clipped to the padded
    border ``H + pad`` (so padding counts, but nothing beyond it).
    """

    def __init__(
        self,
        method: str,
        kernel: tuple[int, int] | None,
        stride: tuple[int, int],
        pad: tuple[int, int],
        ceil_mode: bool = True,
    ):
        super().__init__()
        self.method, self.kernel, self.stride, self.pad, self.ceil_mode = method, kernel, stride, pad, ceil_mode

    def extra_repr(self) -> str:
        k = "global" if self.kernel is None else self.kernel
        return f"{self.method}, kernel={k}, stride={self.stride}, pad={self.pad}, ceil={self.ceil_mode}"

    def _out(self, size: int, k: int, s: int, p: int) -> int:
        span = size + 2 * p - k
        n = (-(-span // s) if self.ceil_mode else span // s) + 1
        if p and (n - 1) * s >= size + p:  # the last window would start inside the padding
            n -= 1
        return n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = int(x.shape[-2]), int(x.shape[-1])
        if self.kernel is None:  # global pooling
            (kh, kw), (sh, sw), (ph, pw) = (h, w), (1, 1), (0, 0)
        else:
            (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.pad
        oh, ow = self._out(h, kh, sh, ph), self._out(w, kw, sw, pw)
        # Extend the bottom/right so that every window of the oh x ow grid exists.
        eh, ew = max(0, (oh - 1) * sh + kh - ph - h), max(0, (ow - 1) * sw + kw - pw - w)
        fill = float("-inf") if self.method == "MAX" else 0.0
        xp = F.pad(x, (pw, ew, ph, eh), value=fill) if (ph or pw or eh or ew) else x
        if self.method == "MAX":
            return F.max_pool2d(xp, (kh, kw), (sh, sw))[..., :oh, :ow]
        total = F.avg_pool2d(xp, (kh, kw), (sh, sw), divisor_override=1)[..., :oh, :ow]
        return total / (self._extent(oh, kh, sh, ph, h, x)[:, None] * self._extent(ow, kw, sw, pw, w, x)[None, :])

    @staticmethod
    def _extent(n: int, k: int, s: int, p: int, size: int, like: torch.Tensor) -> torch.Tensor:
        start = torch.arange(n, device=like.device, dtype=like.dtype) * s - p
        return torch.clamp(start + k, max=size + p) - start


class CaffeLRNWithin(nn.Module):
    """Caffe's WITHIN_CHANNEL LRN: ``x * (1 + alpha * mean_{size x size}(x^2)) ** -beta`` (zero padded)."""

    def __init__(self, size: int, alpha: float, beta: float):
        super().__init__()
        self.size, self.alpha, self.beta = size, alpha, beta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sq = F.avg_pool2d(x * x, self.size, 1, (self.size - 1) // 2, count_include_pad=True)
        return x * (1 + self.alpha * sq) ** (-self.beta)


class CaffeConcat(nn.Module):
    def __init__(self, axis: int):
        super().__init__()
        self.axis = axis

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.axis)


class CaffeFlatten(nn.Module):
    def __init__(self, axis: int, end_axis: int):
        super().__init__()
        self.axis, self.end_axis = axis, end_axis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x, self.axis, self.end_axis)


def reshape_target(shape: tuple[int, ...], dims: list[int], axis: int = 0, num_axes: int = -1) -> list[int]:
    """Caffe's Reshape output shape: ``0`` copies the input dim, ``-1`` is inferred.

    A deploy prototxt often fixes the batch size (``dim: 64``); when that first dim does not
    fit the input's count, it is taken as the input's batch instead, as if it were ``0``.
    """
    n = len(shape)
    start = axis if axis >= 0 else n + axis + 1
    end = n if num_axes == -1 else start + num_axes
    total = math.prod(shape)

    def build(spec: list[int]) -> list[int] | None:
        mid = [shape[start + i] if d == 0 else d for i, d in enumerate(spec)]
        full = list(shape[:start]) + mid + list(shape[end:])
        if full.count(-1) == 1:
            known = math.prod(d for d in full if d != -1)
            if known == 0 or total % known:
                return None
            full[full.index(-1)] = total // known
        return full if math.prod(full) == total and min(full, default=1) >= 0 else None

    out = build(list(dims))
    if out is None and start == 0 and dims and dims[0] > 0:
        out = build([0] + list(dims[1:]))
    if out is None:
        raise ValueError(f"cannot reshape {tuple(shape)} to {list(dims)} (axis {axis}, num_axes {num_axes})")
    return out


class CaffeReshape(nn.Module):
    def __init__(self, dims: list[int], axis: int = 0, num_axes: int = -1):
        super().__init__()
        self.dims, self.axis, self.num_axes = list(dims), axis, num_axes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(reshape_target(tuple(x.shape), self.dims, self.axis, self.num_axes))


class CaffeEltwise(nn.Module):
    """SUM (with per-input coefficients), PROD or MAX of its inputs; one input is allowed (a scaling)."""

    def __init__(self, operation: str, coeffs: list[float]):
        super().__init__()
        self.operation, self.coeffs = operation, list(coeffs)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        if self.operation == "SUM":
            coeffs = self.coeffs or [1.0] * len(xs)
            out = xs[0] * coeffs[0] if coeffs[0] != 1 else xs[0]
            for c, x in zip(coeffs[1:], xs[1:]):
                out = out + (x * c if c != 1 else x)
            return out
        out = xs[0]
        for x in xs[1:]:
            out = out * x if self.operation == "PROD" else torch.maximum(out, x)
        return out


def _broadcast(p: torch.Tensor, axis: int, ndim: int) -> torch.Tensor:
    """``p`` (shape of x's axes axis..axis+p.dim()) reshaped to broadcast against an ndim tensor."""
    axis = axis if axis >= 0 else axis + ndim
    return p.reshape(tuple(p.shape) + (1,) * (ndim - axis - p.dim()))


class CaffeBatchNorm(nn.Module):
    """``(x - mean) / sqrt(var + eps)`` per channel (axis 1), from global statistics; no affine part."""

    def __init__(self, channels: int, eps: float):
        super().__init__()
        self.eps = eps
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, var = _broadcast(self.running_mean, 1, x.dim()), _broadcast(self.running_var, 1, x.dim())
        return (x - mean) / torch.sqrt(var + self.eps)


class CaffeScale(nn.Module):
    """``x * scale (+ bias)``, the scale learned (``weight``) or given as a second input."""

    def __init__(self, shape: tuple[int, ...] | None, axis: int, bias_shape: tuple[int, ...] | None):
        super().__init__()
        self.axis = axis
        self.weight = nn.Parameter(torch.ones(shape)) if shape is not None else None
        self.bias = nn.Parameter(torch.zeros(bias_shape)) if bias_shape is not None else None

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        s = self.weight if scale is None else scale
        out = x * _broadcast(s, self.axis, x.dim())
        return out + _broadcast(self.bias, self.axis, x.dim()) if self.bias is not None else out


class CaffeBias(nn.Module):
    """``x + bias``, the bias learned (``bias``) or given as a second input."""

    def __init__(self, shape: tuple[int, ...] | None, axis: int):
        super().__init__()
        self.axis = axis
        self.bias = nn.Parameter(torch.zeros(shape)) if shape is not None else None

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        return x + _broadcast(self.bias if bias is None else bias, self.axis, x.dim())


class CaffePower(nn.Module):
    """``(shift + scale * x) ** power``."""

    def __init__(self, power: float, scale: float, shift: float):
        super().__init__()
        self.power, self.scale, self.shift = power, scale, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * self.scale if self.scale != 1 else x
        y = y + self.shift if self.shift else y
        return y**self.power if self.power != 1 else y


class CaffeSplit(nn.Module):
    """Caffe's Split: every top is the bottom (returned once; the net copies it to each top)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class CaffeCrop(nn.Module):
    """Crop the first input to the second's shape on axes ``axis..``, at ``offsets``."""

    def __init__(self, axis: int, offsets: list[int]):
        super().__init__()
        self.axis, self.offsets = axis, list(offsets)

    def forward(self, x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        axis = self.axis if self.axis >= 0 else self.axis + x.dim()
        index: list[slice] = [slice(None)] * axis
        for i in range(axis, x.dim()):
            off = self.offsets[0] if len(self.offsets) == 1 else (self.offsets[i - axis] if self.offsets else 0)
            if off + ref.shape[i] > x.shape[i]:
                raise ValueError(f"crop offset {off} + size {ref.shape[i]} exceeds dim {i} ({x.shape[i]})")
            index.append(slice(off, off + ref.shape[i]))
        return x[tuple(index)]


class CaffeSlice(nn.Module):
    """Split along ``axis`` at ``points`` (or into ``n`` equal parts); returns a tuple of tensors."""

    def __init__(self, axis: int, points: list[int], n: int):
        super().__init__()
        self.axis, self.points, self.n = axis, list(points), n

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        size = x.shape[self.axis]
        points = self.points or [size // self.n * i for i in range(1, self.n)]
        bounds = [0, *points, size]
        return tuple(x.narrow(self.axis, a, b - a) for a, b in zip(bounds[:-1], bounds[1:]))
