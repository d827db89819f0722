"""Write the mean amplitude spectrum of natural photos that ``--param maco`` holds its images to.

MACO (Fel et al. 2023, "Unlocking Feature Visualization for Deeper Networks with MAgnitude
Constrained Optimization") optimizes only the phase of a Fourier image; the amplitude stays at the
mean spectrum of natural images. horama downloads ImageNet's; cnnvis computes its own, offline,
from the photos bundled in scikit-image, scikit-learn and matplotlib, every one but the
validation set (bench/photos.py ``TRAINING``), so the spectral score of bench/quality.py is
measured against photos the template never saw.

Each photo is centre-cropped, area-resized to SIDE x SIDE, taken to the parameterization's colour
space (``y = COLOR^-1 logit(p)``: the inverse of its ``rgb = sigmoid(COLOR y)``), windowed (Hann),
and its per-channel ``|rfft2|`` is averaged over photos. The file holds (3, SIDE, SIDE // 2 + 1) float16
with the zero frequency at row 0 (``torch.fft.rfft2``'s layout).

Usage: python scripts/maco_spectrum.py [--side 256] [--out cnnvis/data/maco_spectrum.npy]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from photos import TRAINING, photo  # noqa: E402  (bench/photos.py: the split, written once)

from cnnvis.params.color import COLOR  # noqa: E402


def mean_spectrum(names, side: int) -> np.ndarray:
    """(3, side, side // 2 + 1) mean amplitude spectrum of the photos ``names``."""
    total = torch.zeros(3, side, side // 2 + 1, dtype=torch.float64)
    inverse = torch.linalg.inv(COLOR).double()
    # A Hann window: without it the jump between a photo's opposite edges (the FFT wraps around)
    # puts a bright cross on the spectrum's axes, which MACO then paints as stripes.
    hann = torch.hann_window(side, periodic=False, dtype=torch.float64)
    window = torch.outer(hann, hann)
    window /= window.pow(2).mean().sqrt()  # keep the energy
    for name in names:
        p = torch.from_numpy(photo(name, side)).double().permute(2, 0, 1)
        y = torch.einsum("ij,jhw->ihw", inverse, torch.logit(p.clamp(0.01, 0.99)))
        total += torch.fft.rfft2((y - y.mean(dim=(1, 2), keepdim=True)) * window, norm="ortho").abs()
    return (total / len(names)).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--out", default=os.path.join(ROOT, "cnnvis", "data", "maco_spectrum.npy"))
    args = ap.parse_args()
    spectrum = mean_spectrum(TRAINING, args.side).astype(np.float16)
    np.save(args.out, spectrum)
    print(f"wrote {args.out}: {spectrum.shape} from {len(TRAINING)} photos ({', '.join(TRAINING)})")


if __name__ == "__main__":
    main()
