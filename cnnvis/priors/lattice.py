"""Removing a spatial generator's lattice: the pattern its upsampling stages repeat every ``stride`` pixels.

A generator built from stride-2 transposed convolutions draws each output pixel with the kernel
taps of its phase, so its images carry a faint pattern periodic in the stride (Odena et al. 2016,
"Deconvolution and Checkerboard Artifacts", Distill): spectral peaks at 1/2, 1/4, ... 1/stride
cycles per pixel. An optimization through the generator amplifies it (issue 24 measured peaks of
5-10x the neighbouring frequencies in dreams and deep inversions; photos score about 1).
Retraining with a lattice loss removed it but made a worse prior, so here it is removed after the
generator instead, as fixed-pattern noise is removed from a sensor: estimate the pattern as the
mean of the image's fine detail at each of the ``stride`` x ``stride`` phases, over the blocks
around each block, and subtract it.

- Only fine detail (the image minus a Gaussian blur wider than the period) enters the estimate, so
  smooth content (a gradient, a sky) is not mistaken for a pattern and turned into a staircase.
- Averaging a phase over many blocks cancels the photo's own detail, which has no reason to repeat
  every ``stride`` pixels, and keeps what the generator repeats.
- The average is local (a Gaussian window of ``blocks`` blocks), because the pattern's strength
  follows the content the generator draws.

The subtraction is linear, so the optimizer's gradient passes through it: the search cannot bring
the lattice back, because whatever periodic pattern the generator draws is subtracted before the
model sees the image. A generator trained against seams also draws more fine detail at some phases
than at others (it had balanced their edge energy with the lattice in it); :func:`balance_phase_energy`
evens that out, or the subtraction would leave a grid (bench/RESULTS.md, "DGN lattice").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The Gaussian windows' sd in blocks, chosen on the tuning photos' decodes (bench/RESULTS.md, "DGN lattice"):
# the stride's pattern over 2 blocks (wider windows leave more of it; narrower ones treat pixels at a block's
# centre and at its edges differently, which draws seams), then the 2-pixel checkerboard, whose strength changes
# from pixel to pixel, over a fraction of a pixel pair.
STRIDE_WINDOW_BLOCKS = 2.0
CHECKERBOARD_WINDOW_BLOCKS = 0.35
# The finest detail (the image minus a Gaussian of this sd in pixels), whose energy is balanced between the phases
# (balance_phase_energy), over the stride's window; a gain of at most this factor either way. Chosen on the tuning
# decodes: sd 1 took their grid ratio from 1.21 / 1.23 to 1.13 / 1.09, sd 2 left one axis at 1.24.
BALANCE_DETAIL_SIGMA = 1.0
BALANCE_MAX_GAIN = 2.0


def _pad(x: torch.Tensor, pad: int, dim: int, odd: bool) -> torch.Tensor:
    """``x`` padded by ``pad`` on both ends of ``dim`` with its mirror image about the edge, or with
    ``odd`` its point reflection (``2 x[0] - x[k]``), which continues a linear ramp as a ramp:
    blurred, a ramp stays what it was."""
    n = x.shape[dim]
    if pad <= 0:
        return x
    first, last = x.narrow(dim, 0, 1), x.narrow(dim, n - 1, 1)
    before, after = x.narrow(dim, 1, pad).flip(dim), x.narrow(dim, n - 1 - pad, pad).flip(dim)
    if odd:
        before, after = 2 * first - before, 2 * last - after
    return torch.cat([before, x, after], dim)


def _gaussian_blur(x: torch.Tensor, sigma: float, odd: bool = False) -> torch.Tensor:
    """``x`` (N, C, H, W) blurred by a separable Gaussian of sd ``sigma`` pixels, the edges continued
    by :func:`_pad` (a kernel wider than the image is cut to fit)."""
    radius = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    n, c, h, w = x.shape
    flat = x.reshape(1, n * c, h, w)  # one depthwise convolution: 5x faster than n * c one-channel images on CPU
    for dim, side in ((3, w), (2, h)):
        r = min(radius, side - 1)
        k = kernel[radius - r : radius + r + 1]
        shape = (1, 1, 1, -1) if dim == 3 else (1, 1, -1, 1)
        weight = (k / k.sum()).view(shape).expand(n * c, *shape[1:]).contiguous()
        flat = F.conv2d(_pad(flat, r, dim, odd), weight, groups=n * c)
    return flat.reshape(n, c, h, w)


def lattice(image: torch.Tensor, period: int, blocks: float = STRIDE_WINDOW_BLOCKS) -> torch.Tensor:
    """The pattern ``image`` (B, C, H, W) repeats every ``period`` pixels from its top-left corner
    (H and W multiples of ``period``), as a (B, C, H, W) tensor of zero mean over each block's
    phases: the fine detail's mean at each phase over a Gaussian window of ``blocks`` blocks
    (``blocks=inf`` or a window past the image: the whole image)."""
    detail = image - _gaussian_blur(image, period / 2, odd=True)  # passes periods <= period (gain > 0.99 at `period`)
    mean = _phase_average(detail, period, blocks)
    mean = mean - mean.mean(dim=(2, 3), keepdim=True)  # the pattern, not the blocks' local brightness
    return _at_pixels(mean)


def _phase_average(x: torch.Tensor, period: int, blocks: float) -> torch.Tensor:
    """``x`` (B, C, H, W), H and W multiples of ``period``, averaged at each of the ``period`` x
    ``period`` phases over a Gaussian window of ``blocks`` blocks (or over the whole image, when
    the window reaches past it): (B, C, period, period, H / period, W / period)."""
    b, c, h, w = x.shape
    if h % period or w % period:
        raise ValueError(f"the image ({h}x{w}) must be whole blocks of {period} pixels")
    gh, gw = h // period, w // period
    # (B, C, gh, P, gw, P) -> one (gh, gw) map of blocks per phase
    phases = x.reshape(b, c, gh, period, gw, period).permute(0, 1, 3, 5, 2, 4).reshape(b, c * period**2, gh, gw)
    if blocks == float("inf") or blocks * 3 >= max(gh, gw):
        phases = phases.mean(dim=(2, 3), keepdim=True).expand_as(phases)
    else:
        phases = _gaussian_blur(phases, blocks)
    return phases.reshape(b, c, period, period, gh, gw)


def _at_pixels(per_phase: torch.Tensor) -> torch.Tensor:
    """A (B, C, P, P, gh, gw) map of :func:`_phase_average` as an image (B, C, gh * P, gw * P): each
    pixel reads its phase between the neighbouring blocks' centres (:func:`_between_blocks`)."""
    b, c, period, _, gh, gw = per_phase.shape
    per_phase = _between_blocks(_between_blocks(per_phase, 2, 4), 3, 5)
    return per_phase.permute(0, 1, 4, 2, 5, 3).reshape(b, c, gh * period, gw * period)


def _between_blocks(pattern: torch.Tensor, phase_dim: int, block_dim: int) -> torch.Tensor:
    """Each phase's estimate read at its own pixels' positions, linearly between the centres of the
    neighbouring blocks (replicated at the edges), so that the subtracted pattern has no seams at
    the block boundaries. ``pattern`` has the ``period`` phases on ``phase_dim`` and the blocks on
    ``block_dim``."""
    period = pattern.shape[phase_dim]
    # a pixel at phase p lies (p + 0.5) / period - 0.5 blocks from its block's centre
    offset = (torch.arange(period, dtype=pattern.dtype, device=pattern.device) + 0.5) / period - 0.5
    shape = [1] * pattern.dim()
    shape[phase_dim] = period
    offset = offset.view(shape)
    n = pattern.shape[block_dim]
    before = torch.cat([pattern.narrow(block_dim, 0, 1), pattern.narrow(block_dim, 0, n - 1)], block_dim)
    after = torch.cat([pattern.narrow(block_dim, 1, n - 1), pattern.narrow(block_dim, n - 1, 1)], block_dim)
    return pattern + offset.clamp(min=0) * (after - pattern) + (-offset).clamp(min=0) * (before - pattern)


def remove_lattice(image: torch.Tensor, period: int, blocks: float = STRIDE_WINDOW_BLOCKS) -> torch.Tensor:
    """``image`` (B, C, H, W) without the pattern it repeats every ``period`` pixels (:func:`lattice`);
    same shape and range of values up to the pattern's amplitude; differentiable."""
    return image - lattice(image, period, blocks)


def balance_phase_energy(image: torch.Tensor, period: int, blocks: float = STRIDE_WINDOW_BLOCKS) -> torch.Tensor:
    """``image`` (B, C, H, W) with the energy of its finest detail equal at the ``period`` x
    ``period`` phases (over a Gaussian window of ``blocks`` blocks): a generator trained against
    seams draws more detail at some phases than at others, a grid that no subtraction removes (the
    stride-16 grid ratio, :func:`cnnvis.recipes.metrics.grid_ratio`). Each pixel's detail is scaled
    by sqrt(mean energy / its phase's energy), between 1 / BALANCE_MAX_GAIN and BALANCE_MAX_GAIN."""
    detail = image - _gaussian_blur(image, BALANCE_DETAIL_SIGMA, odd=True)
    energy = _phase_average((detail * detail).mean(1, keepdim=True), period, blocks) + 1e-8  # one gain per pixel
    gain = (energy.mean(dim=(2, 3), keepdim=True) / energy).sqrt().clamp(1 / BALANCE_MAX_GAIN, BALANCE_MAX_GAIN)
    gain = _at_pixels(gain)
    return image + detail * (gain - 1)


def remove_generator_lattice(image: torch.Tensor, stride: int) -> torch.Tensor:
    """A spatial generator's output (B, 3, H, W), H and W multiples of its ``stride``, without the
    pattern of its upsampling stages: the stride's pattern (which holds every period dividing it),
    then what is left of the 2-pixel checkerboard (:func:`remove_lattice`), then the difference in
    detail between the stride's phases (:func:`balance_phase_energy`)."""
    image = remove_lattice(image, stride, STRIDE_WINDOW_BLOCKS)
    if stride > 2:
        image = remove_lattice(image, 2, CHECKERBOARD_WINDOW_BLOCKS)
    return balance_phase_energy(image, stride)
