"""MACO's images and their phase gradient in bounded memory, for canvases too large for autograd's graph.

Autograd through :meth:`cnnvis.params.maco.MacoParam.images` holds about nine canvas-sized tensors at once (the
complex spectrum and its polar factors, the irfft, the standardization's, the colour map's and the sigmoid's, and
their gradients): at 4096x4096 the step's peak was its backward, not the tiles. Here the pointwise stages
(standardize, colour map, sigmoid) run in place in bands of rows, and the irfft and its adjoint run one colour
channel at a time (the adjoint written out as torch's backward computes it). The draw then holds one canvas beside a
channel's spectrum, and the gradient two canvases beside it; sums run band by band in float64.

The result equals autograd's up to float rounding (tests/params/test_maco_lean.py); small canvases keep autograd's
graph, so their runs are bit for bit what they were.

Shapes: ``phase`` (N, 3, H, W // 2 + 1) radians; ``amplitude`` (3, H, W // 2 + 1), or anything whose ``[c]`` is
channel ``c``'s (:class:`cnnvis.params.maco.ChannelAmplitudes`); images (N, 3, H, W) in (0, 1).
"""

from __future__ import annotations

import torch

from cnnvis.canvas.sizes import Size
from cnnvis.params.color import COLOR, mix

ROWS = 128  # rows per band of the pointwise stages: a band is (N, 3, 128, W), small beside a canvas
STD_EPS = 1e-4  # as cnnvis.params.maco._standardize


def _logits(phase: torch.Tensor, amplitude, size: Size, out: torch.Tensor | None = None) -> torch.Tensor:
    """The decorrelated logits (N, 3, H, W) before standardization, one colour channel's irfft at a time, written
    into ``out`` when given."""
    if out is None:
        out = phase.new_empty(phase.shape[0], 3, *size)
    for c in range(3):
        spec = torch.polar(amplitude[c].expand_as(phase[:, c]), phase[:, c])
        if out[:, c].is_contiguous():  # a batch of one: the irfft writes in place
            torch.fft.irfft2(spec, s=size, norm="ortho", out=out[:, c])
        else:
            out[:, c] = torch.fft.irfft2(spec, s=size, norm="ortho")
    return out


def _banded_sum(fn, y: torch.Tensor) -> torch.Tensor:
    """The per-image sum (N, 1, 1, 1) of ``fn(band)`` over bands of rows of ``y`` (N, C, H, W), in float64."""
    total = torch.zeros(y.shape[0], dtype=torch.float64, device=y.device)
    for a in range(0, y.shape[2], ROWS):
        total += fn(y[:, :, a : a + ROWS]).sum(dim=(1, 2, 3), dtype=torch.float64)
    return total.view(-1, 1, 1, 1)


@torch.no_grad()
def standardized_logits(
    phase: torch.Tensor, amplitude, size: Size, out: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y_hat, std)``: the logits standardized per image in place (zero mean, unit variance) and each image's
    standard deviation (N, 1, 1, 1) before it (torch.std's, with n - 1), both summed band by band."""
    y = _logits(phase, amplitude, size, out)
    n = y[0].numel()
    mean = _banded_sum(lambda b: b, y) / n
    std = (_banded_sum(lambda b: (b - mean.to(b)) ** 2, y) / (n - 1)).sqrt()
    mean, std = mean.to(y), std.to(y)
    return y.sub_(mean).div_(std + STD_EPS), std


@torch.no_grad()
def draw(phase: torch.Tensor, amplitude, size: Size, out: torch.Tensor | None = None) -> torch.Tensor:
    """MACO's images (N, 3, H, W) in (0, 1): ``sigmoid(COLOR @ standardize(irfft2(A exp(i phase))))``, drawn
    into ``out`` (an earlier canvas of the same shape) when given."""
    y, _ = standardized_logits(phase, amplitude, size, out)
    for a in range(0, size[0], ROWS):
        band = y[:, :, a : a + ROWS]
        band.copy_(torch.sigmoid(mix(COLOR, band)))
    return y


def _phase_shaped_over(grad: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """A contiguous tensor of ``phase``'s shape for the phase gradient: for one image, a view of the start of
    ``grad``'s storage, else a new one. Channel c's gradient fills elements [c, c + 1) * H * (W // 2 + 1), which lie
    within colour planes 0..c of ``grad``, all read before it is written (planes above c start at (c + 1) * H * W).
    So, as the pixel parameterization's, the gradient aliases the loop's buffer until the step is taken."""
    n, _, h, w2 = phase.shape
    if n != 1 or not grad.is_contiguous():
        return torch.empty_like(phase)
    return grad.view(-1)[: 3 * h * w2].view(phase.shape)


def phase_gradient(phase: torch.Tensor, amplitude, size: Size, grad: torch.Tensor) -> torch.Tensor:
    """d(loss)/d(phase) (N, 3, H, W // 2 + 1) from ``grad`` = d(loss)/d(images) (N, 3, H, W), which is overwritten:
    for one image the result is a view of it (see :func:`_phase_shaped_over`)."""
    y_hat, std = standardized_logits(phase.detach(), amplitude, size)
    with torch.no_grad():
        for a in range(0, size[0], ROWS):  # back through the sigmoid and the colour map
            g, yb = grad[:, :, a : a + ROWS], y_hat[:, :, a : a + ROWS]
            s = torch.sigmoid(mix(COLOR, yb))
            g.copy_(mix(COLOR.T, g * s * (1 - s)))
        # back through the standardization (torch.std's n - 1): with g = d/d(y_hat),
        # d/dy = (g - mean(g)) / (std + eps) - y_hat * sum(g * y_hat) / ((n - 1) std)
        n = grad[0].numel()
        g_mean = grad.mean(dim=(1, 2, 3), keepdim=True)
        g_dot = torch.zeros(grad.shape[0], 1, 1, 1, dtype=torch.float64, device=grad.device)
        for a in range(0, size[0], ROWS):
            g_dot += (grad[:, :, a : a + ROWS] * y_hat[:, :, a : a + ROWS]).sum(
                dim=(1, 2, 3), keepdim=True, dtype=torch.float64
            )
        along = g_dot.to(grad) / ((n - 1) * std)
        for a in range(0, size[0], ROWS):
            g, yb = grad[:, :, a : a + ROWS], y_hat[:, :, a : a + ROWS]
            g.sub_(g_mean).div_(std + STD_EPS).sub_(yb * along)
    del y_hat, g, yb  # the last band's views would keep y_hat's storage alive
    out = _phase_shaped_over(grad, phase)
    twins = slice(1, (size[1] + 1) // 2)  # rfft columns with a mirrored twin that irfft2 adds in
    with torch.no_grad():
        for c in range(3):  # back through the irfft and the polar form, one channel at a time
            # irfft2's adjoint: rfft2, with the twinned columns counted twice (as torch's own backward does)
            g_spec = torch.fft.rfft2(grad[:, c], norm="ortho")
            g_spec[..., twins] *= 2
            # spec = A exp(i phase): d/d(phase) = Re(conj(g_spec) * i * spec) = Im(g_spec * conj(spec))
            g_spec.mul_(torch.polar(amplitude[c].expand_as(phase[:, c]), phase[:, c].detach()).conj_physical_())
            out[:, c] = g_spec.imag
    return out
