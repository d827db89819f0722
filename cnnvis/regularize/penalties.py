"""Image priors on the whole canvas: total variation, p-norms, Gaussian blur.

Each regularizer is a loss to *minimize*, a sum of terms anchored at pixel rows. Its
gradient is computed strip by strip (rows ``a..b`` plus a ``halo`` of extra rows below), so
even a 8192x8192 canvas never needs more than a strip's worth of autograd buffers, and
the sum over strips equals the whole-canvas gradient exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import kornia
import torch
import torch.nn.functional as F

from cnnvis.errors import InputError


# Finite-difference operators of jcjohnson/cnn-vis's TV, as (x, y) correlation kernels
# applied with 'valid' padding (no border terms, as in cnn-vis). Sobel comes from kornia.
@functools.cache
def tv_kernels(operator: str) -> torch.Tensor:
    """(2, k, k) kernels: [d/dx, d/dy] of ``operator``."""
    if operator == "sobel":
        # right column minus left, bottom row minus top
        return kornia.filters.get_spatial_gradient_kernel2d("sobel", 1)
    if operator == "naive":
        # x[i, j] - x[i, j+1] and x[i, j] - x[i+1, j]
        return torch.tensor([[[1.0, -1.0], [0.0, 0.0]], [[1.0, 0.0], [-1.0, 0.0]]])
    # sobel_squish: Sobel made one-sided (centre minus left / centre minus top)
    return torch.tensor(
        [[[-1.0, 1.0, 0.0], [-2.0, 2.0, 0.0], [-1.0, 1.0, 0.0]], [[-1.0, -2.0, -1.0], [1.0, 2.0, 1.0], [0.0, 0.0, 0.0]]]
    )


from cnnvis.config import TV_OPERATORS  # noqa: E402  (defined once, in the config)

STRIP_VALUES = 1 << 20  # values per regularizer strip (channels x rows x width)


@dataclass(frozen=True)
class TV:
    """Total variation ``weight * sum((dx**2 + dy**2 + eps) ** (beta / 2))`` on ``x / scale``.

    Mahendran & Vedaldi (2015), eq. 5, with beta > 1 to avoid the spikes of beta = 1.
    ``eps`` keeps the gradient finite where the image is flat and beta < 2.

    Args:
        weight: multiplier; 0 disables.
        beta: exponent (2 = squared gradient magnitude).
        operator: ``naive`` | ``sobel`` | ``sobel_squish`` (cnn-vis's options).
        scale: the image is divided by this first (units of [0, 1] pixels).
    """

    weight: float
    beta: float = 2.0
    operator: str = "naive"
    scale: float = 1.0
    eps: float = 1e-8

    def __post_init__(self):
        if self.operator not in TV_OPERATORS:
            raise InputError(f"unknown TV operator '{self.operator}'; use one of {', '.join(TV_OPERATORS)}")

    @property
    def halo(self) -> int:
        return tv_kernels(self.operator).shape[-1] - 1

    def loss(self, x: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        """Sum over all complete kernel windows of ``x`` (B, C, H, W) -> scalar."""
        if x.shape[-2] <= self.halo or x.shape[-1] <= self.halo:
            return x.new_zeros(())
        c = x.shape[1]
        # Both differences of every channel in one grouped convolution: output channels are
        # (dx_0, dy_0, dx_1, dy_1, ...). kornia.filters.filter2d runs one pass per kernel:
        # 1.6x to 7.7x slower for loss + gradient (bench/tv_kernels.py).
        w = tv_kernels(self.operator).to(x)[:, None].repeat(c, 1, 1, 1)
        d = F.conv2d(x / self.scale, w, groups=c)
        if self.beta == 2:
            # (dx^2 + dy^2 + eps)^1 summed is sum(d^2) plus a constant: same gradient, a third
            # of the elementwise passes (the default setting, on every step).
            return self.weight * (d.square().sum() + self.eps * d[:, 0::2].numel())
        return self.weight * (d[:, 0::2].square() + d[:, 1::2].square() + self.eps).pow(self.beta / 2).sum()


@dataclass(frozen=True)
class PNorm:
    """``weight * sum(|(x - target) / scale| ** alpha)`` (Mahendran & Vedaldi's alpha-norm, alpha = 6).

    ``target`` is ``"zero"`` (the model's mean colour, i.e. zero after normalization, as in
    cnn-vis) or ``"init"`` (the initial image, which keeps an image-init dream close to it).
    """

    weight: float
    alpha: float = 6.0
    scale: float = 0.5
    target: str = "zero"
    center: tuple[float, float, float] = (0.5, 0.5, 0.5)
    halo: int = 0

    def __post_init__(self):
        if self.target not in ("zero", "init"):
            raise InputError(f"unknown p-norm target '{self.target}'; use zero or init")

    def loss(self, x: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        """Of the colours of ``x`` (B, 3 or 4, H, W): an RGBA canvas's alpha is not pulled."""
        x = x[:, :3]
        if self.target == "init" and ref is not None:
            d = x - ref
        else:
            d = x - torch.tensor(self.center, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return self.weight * (d / self.scale).abs().pow(self.alpha).sum()


@dataclass(frozen=True)
class AlphaPenalty:
    """``weight * sum(alpha)`` of an RGBA canvas (B, 4, H, W): the mean opacity times H W, so its
    gradient is ``weight`` at every alpha value (per pixel, like a TV weight). Optimized under
    random backgrounds (:class:`cnnvis.regularize.transforms.Composite`), it makes transparent
    what the objective does not need (Mordvintsev et al. 2018, "Differentiable Image
    Parameterizations", Distill: the penalty on mean opacity). An RGB canvas costs nothing."""

    weight: float
    halo: int = 0

    def loss(self, x: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        return self.weight * x[:, 3:].sum()


def regularizer_gradient(
    canvas: torch.Tensor,
    regs: Sequence[TV | PNorm | AlphaPenalty],
    out: torch.Tensor,
    ref: torch.Tensor | None = None,
    strip_rows: int | None = None,
) -> float:
    """Add d(sum of regularizer losses)/d(canvas) into ``out``; return the total loss.

    Args:
        canvas: (N, C, H, W), C = 3 or 4 (RGBA).
        regs: regularizers with ``weight != 0``.
        out: (N, C, H, W) gradient buffer, added to.
        ref: (1 or N, 3, H, W) initial image for ``PNorm(target="init")``, or ``None``.
        strip_rows: rows per strip; the autograd buffers are ~10 strip-sized tensors. By default
            a strip holds about ``STRIP_VALUES`` values: the whole canvas at 512 px (no per-strip
            overhead in the hot loop), 85 rows at 4096 px wide (0.1 GB of buffers; 256 rows
            took 0.34 GB at the same speed).
    """
    height = canvas.shape[-2]
    if strip_rows is None:
        strip_rows = max(16, STRIP_VALUES // (canvas.shape[0] * canvas.shape[1] * canvas.shape[-1]))
    total = 0.0
    for reg in regs:
        if reg.weight == 0:
            continue
        for a in range(0, height, strip_rows):
            b = min(a + strip_rows + reg.halo, height)
            # Terms anchored at rows a..a+strip_rows-1 need `halo` more rows below.
            slab = canvas[:, :, a:b].detach().requires_grad_(True)
            loss = reg.loss(slab, None if ref is None else ref[:, :, a:b])
            (g,) = torch.autograd.grad(loss, slab)
            out[:, :, a:b] += g
            total += float(loss.detach())
            if b == height:
                break
    return total


def gaussian_blur_(canvas: torch.Tensor, sigma: float, strip_rows: int = 64) -> None:
    """Blur ``canvas`` (1, 3, H, W) in place with a Gaussian of ``sigma`` pixels.

    Computed strip by strip with a halo, so the extra memory is a few strips, not a canvas;
    reflect padding at the canvas border, as ``kornia.filters.gaussian_blur2d``. kornia's
    blur needs ~15x its input in temporaries, hence the short default strips (65 MB extra
    at 4096x4096 with 64 rows, 200 MB with 256).
    """
    if sigma <= 0:
        return
    k = 2 * int(round(3 * sigma)) + 1
    half = k // 2
    height = canvas.shape[-2]
    pending: list[tuple[int, torch.Tensor]] = []
    # Each strip is blurred from the *unblurred* rows; writes are delayed until no later
    # strip needs the rows they overwrite.
    for a in range(0, height, strip_rows):
        b = min(a + strip_rows, height)
        lo, hi = max(0, a - half), min(height, b + half)
        blurred = kornia.filters.gaussian_blur2d(canvas[:, :, lo:hi], (k, k), (sigma, sigma), border_type="reflect")
        pending.append((a, blurred[:, :, a - lo : a - lo + (b - a)]))
        while pending and pending[0][0] + pending[0][1].shape[-2] <= max(0, b - half):
            s, t = pending.pop(0)
            canvas[:, :, s : s + t.shape[-2]] = t
    for s, t in pending:
        canvas[:, :, s : s + t.shape[-2]] = t


def regularizers_from_config(cfg, step: int, p_target: str, mean: Sequence[float]) -> list[TV | PNorm | AlphaPenalty]:
    """The regularizers a :class:`cnnvis.config.RenderConfig` asks for at ``step`` (0-based,
    within a size): TV (its weight stepped by ``tv_step`` every ``tv_step_every`` steps), the
    p-norm toward ``p_target`` (zero | init), the auxiliary p-norm toward zero and, with
    ``cfg.alpha``, the opacity penalty."""
    tv_w = cfg.tv_weight + cfg.tv_step * (step // cfg.tv_step_every if cfg.tv_step_every else 0)
    regs: list[TV | PNorm | AlphaPenalty] = [
        TV(tv_w, cfg.tv_beta, cfg.tv_operator, cfg.tv_scale),
        PNorm(cfg.p_weight, cfg.p_alpha, cfg.p_scale, p_target, tuple(mean)),
        PNorm(cfg.aux_p_weight, cfg.aux_p_alpha, cfg.aux_p_scale, "zero", tuple(mean)),
    ]
    if cfg.alpha:
        regs.append(AlphaPenalty(cfg.alpha_penalty))
    return regs
