"""The spectral slope references of issue 21's scorecard: the bundled photos' mean slopes and clipped fractions,
and the slope of a MACO image with random phase (what the shipped amplitude template gives before any optimization).

    python bench/spectral_reference.py
    python bench/spectral_reference.py --saved /tmp/ft_v2 /tmp/ft_d15    # bench/quality.py --save-dir folders

``--saved`` measures the images that bench/quality.py runs saved (METHOD_CLASS.png), per folder and method,
beside the photos: the same measures, after the fact, for runs made before a measure existed.

The slope is :func:`cnnvis.recipes.quality.spectral_slope` of each photo at 224 px (bench/photos.py): the
training photos (the template's, scripts/maco_spectrum.py), the validation photos, and all of them.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys

import imageio.v3 as iio
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from photos import TRAINING, VALIDATION, photo  # noqa: E402

from cnnvis.params.color import COLOR, mix  # noqa: E402
from cnnvis.params.maco import _standardize, read_spectrum, spectrum_at  # noqa: E402
from cnnvis.recipes.quality import clipped_fraction, high_frequency_energy, spectral_slope  # noqa: E402

SIDE = 224


def random_phase_slopes(n: int = 8) -> list[float]:
    """Slopes of ``n`` MACO images with uniformly random phase and the shipped amplitude template."""
    amplitude = spectrum_at(read_spectrum(None), (SIDE, SIDE))
    gen = torch.Generator().manual_seed(0)
    slopes = []
    for _ in range(n):
        phase = torch.rand(1, *amplitude.shape, generator=gen) * 2 * torch.pi
        y = _standardize(torch.fft.irfft2(torch.polar(amplitude.expand_as(phase), phase), s=(SIDE, SIDE), norm="ortho"))
        slopes.append(spectral_slope(torch.sigmoid(mix(COLOR, y))[0].permute(1, 2, 0).numpy()))
    return slopes


def measures(images: list[np.ndarray]) -> str:
    """The table cells of ``images`` (H, W, 3) in [0, 1]: n, slope (mean and sd), HF energy and clipped fraction."""
    slopes = [spectral_slope(a) for a in images]
    hf = statistics.mean(high_frequency_energy(a) for a in images)
    clip = statistics.mean(clipped_fraction(a) for a in images)
    return f"{len(images)} | {statistics.mean(slopes):.3f} | {statistics.stdev(slopes):.3f} | {hf:.3f} | {clip:.3f}"


def saved_images(folder: str) -> dict[str, list[np.ndarray]]:
    """method -> the images a bench/quality.py run saved in ``folder`` (METHOD_CLASS.png), in [0, 1]."""
    out: dict[str, list[np.ndarray]] = {}
    for path in sorted(glob.glob(os.path.join(folder, "*_*.png"))):
        method = os.path.basename(path).rsplit("_", 1)[0]
        out.setdefault(method, []).append(iio.imread(path)[..., :3].astype(np.float64) / 255)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--saved", nargs="*", default=[], help="bench/quality.py --save-dir folders to measure too")
    args = ap.parse_args()
    rows = {"training photos (the template's)": TRAINING, "validation photos": VALIDATION}
    rows["all bundled photos"] = TRAINING + VALIDATION
    print(f"| images | n | mean slope at {SIDE} px | sd | HF | clipped |")
    print("|---|---|---|---|---|---|")
    for name, names in rows.items():
        print(f"| {name} | {measures([photo(n, SIDE) for n in names])} |")
    for folder in args.saved:
        for method, images in saved_images(folder).items():
            print(f"| {method} ({folder}) | {measures(images)} |")
    if not args.saved:
        s = random_phase_slopes()
        name = "MACO, random phase (the shipped template)"
        print(f"| {name} | {len(s)} | {statistics.mean(s):.3f} | {statistics.stdev(s):.3f} | | |")


if __name__ == "__main__":
    main()
