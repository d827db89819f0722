"""The spectral slope references of issue 21's scorecard: the bundled photos' mean slopes, and the slope of
a MACO image with random phase (what the shipped amplitude template gives before any optimization).

    python bench/spectral_reference.py

The slope is :func:`cnnvis.recipes.quality.spectral_slope` of each photo at 224 px (bench/photos.py): the
training photos (the template's, scripts/maco_spectrum.py), the validation photos, and all of them.
"""

from __future__ import annotations

import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from photos import TRAINING, VALIDATION, photo  # noqa: E402

from cnnvis.params.color import COLOR, mix  # noqa: E402
from cnnvis.params.maco import _standardize, read_spectrum, spectrum_at  # noqa: E402
from cnnvis.recipes.quality import spectral_slope  # noqa: E402

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


def main() -> None:
    rows = {"training photos (the template's)": TRAINING, "validation photos": VALIDATION}
    rows["all bundled photos"] = TRAINING + VALIDATION
    print(f"| photos | n | mean slope at {SIDE} px | sd |")
    print("|---|---|---|---|")
    for name, names in rows.items():
        s = [spectral_slope(photo(n, SIDE)) for n in names]
        print(f"| {name} | {len(s)} | {statistics.mean(s):.3f} | {statistics.stdev(s):.3f} |")
    s = random_phase_slopes()
    name = "MACO, random phase (the shipped template)"
    print(f"| {name} | {len(s)} | {statistics.mean(s):.3f} | {statistics.stdev(s):.3f} |")


if __name__ == "__main__":
    main()
