"""Reconstruction quality: pixel correlation, SSIM, normalized feature error.

Images are (1, 3, H, W) float in [0, 1]. The feature error of a layer is
``||phi(x) - phi(x0)||^2 / ||phi(x0)||^2`` summed over a fixed grid of tiles (one tile when
the image fits the model input), so it is defined at any size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cnnvis.canvas.stride_grid import LATTICE_PERIODS, lattice_profile, phase_profile
from cnnvis.canvas.tiling import layout
from cnnvis.models.registry import LoadedModel


def pixel_correlation(x: torch.Tensor, x0: torch.Tensor) -> float:
    """Pearson correlation of all pixel values (every channel) of ``x`` and ``x0`` (icnn's metric)."""
    a = x.double().flatten() - x.double().mean()
    b = x0.double().flatten() - x0.double().mean()
    return float((a @ b) / (a.norm() * b.norm()).clamp_min(1e-30))


def ssim(x: torch.Tensor, x0: torch.Tensor, window: int = 11) -> float:
    """Mean structural similarity (Wang et al. 2004) over channels and pixels, via kornia."""
    from kornia.metrics import ssim as kssim

    return float(kssim(x.float().clamp(0, 1), x0.float().clamp(0, 1), window, max_val=1.0).mean())


def lab_error(x: torch.Tensor, x0: torch.Tensor) -> float:
    """Mean CIE76 colour difference (Euclidean distance in CIELAB, D65) between ``x`` and ``x0``
    (B, 3, H, W) sRGB in [0, 1], pixel by pixel: 0 for the same colours, about 2.3 for a just
    noticeable difference, 100 between black and white. A washed-out or colour-shifted
    reconstruction scores high even where its correlation is fair. Via kornia."""
    from kornia.color import rgb_to_lab

    a, b = (rgb_to_lab(t.float().clamp(0, 1)) for t in (x, x0))
    return float((a - b).pow(2).sum(1).sqrt().mean())


@torch.no_grad()
def feature_errors(
    model: LoadedModel, x: torch.Tensor, x0: torch.Tensor, layers: Sequence[str], tile: int | None = None
) -> dict[str, float]:
    """Normalized feature error of ``x`` against ``x0`` at each layer (0 = identical features)."""
    tile = tile or model.input_size
    h, w = x0.shape[-2:]
    grid = layout(h, w, tile, 0, (0, 0), device=x.device)
    num = dict.fromkeys(layers, 0.0)
    den = dict.fromkeys(layers, 0.0)
    with model.capture(layers) as cap:
        for win in grid.windows:
            crop = lambda im: im[:, :, win.y0 : win.y1, win.x0 : win.x1]  # noqa: E731
            f = cap(model.normalize(crop(x).to(x0)))
            f0 = cap(model.normalize(crop(x0)))
            for k in layers:
                num[k] += float((f[k].double() - f0[k].double()).pow(2).sum())
                den[k] += float(f0[k].double().pow(2).sum())
    return {k: num[k] / max(den[k], 1e-30) for k in layers}


def grid_ratio(x: torch.Tensor, stride: int = 16) -> tuple[float, float]:
    """How much images (B, C, H, W) in [0, 1] show a grid of ``stride``-pixel blocks, per axis
    (columns, rows): the energy of the second difference across each pixel column (row),
    averaged per phase modulo ``stride``; the strongest phase over the mean of the others.
    Over a batch, each image's phase energies are divided by their mean (so no image weighs
    more for being busier) and then averaged: a grid that every image shares adds up, a
    photo's own strong edges (at a phase by chance) average out.

    One natural photo at 224 px scores 1.2-2.0 (its few strong edges fall at some phase: 14
    columns per phase are few), eight pooled 1.07 (bench/photos.py's tuning and validation
    sets); blocks of the stride score far higher. Measure 8-bit outputs without lossy
    compression: JPEG's own 8-pixel blocks read as a grid at strides divisible by 8.
    """
    per_phase = phase_profile(x.double(), stride).mean(0)  # (2, stride): pooled over the batch
    out = []
    for axis in per_phase:
        top = int(axis.argmax())
        others = torch.cat([axis[:top], axis[top + 1 :]])
        out.append(float(axis[top] / others.mean()))
    return out[0], out[1]


def lattice_ratios(x: torch.Tensor, periods=LATTICE_PERIODS) -> dict[int, float]:
    """{period: ratio}: how far images (B, C, H, W) in [0, 1] peak at 1/period cycles per pixel
    over the neighbouring frequencies, the larger of the two axes, pooled over the batch (the
    mean of each image's ratio). Photos and plain dreams score about 1; the transposed
    convolutions of a generator leave peaks at 2, 4, 8 and 16 pixels (issue 24). JPEG's 8-pixel
    blocks read as a peak at 8 and 4: measure lossless outputs."""
    profile = lattice_profile(x.double(), periods).mean(0)  # (2, len(periods))
    return {p: float(profile[:, i].max()) for i, p in enumerate(periods)}


def quality(model: LoadedModel, x: torch.Tensor, x0: torch.Tensor, layers: Sequence[str]) -> dict:
    """``{"pixel_correlation", "ssim", "lab_error", "feature_error": {layer: value}}`` of ``x``
    against ``x0``."""
    return {
        "pixel_correlation": pixel_correlation(x, x0),
        "ssim": ssim(x, x0),
        "lab_error": lab_error(x, x0),
        "feature_error": feature_errors(model, x, x0, layers),
    }
