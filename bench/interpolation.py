"""How strongly should an interpolation's images share their low-resolution terms?

``cnnvis prefer --interpolate LAYER:A:B --batch N`` renders N images from channel A to channel B
whose Fourier images share terms (lucid's aligned interpolation); ``--shared-weight`` is the
shared terms' strength. Too strong and the ends look alike (issue 24: frame 0 and frame 5
correlated at 0.77 at weight 1); too weak and neighbours jump. For each weight and channel pair
this prints, over the N images (uint8, grey levels):

- ``ends r``: Pearson correlation of image 0 with image N-1 (low: the ends differ);
- ``ends diff``: their mean |difference|, in grey levels;
- ``step / ends``: the mean neighbour difference over the ends' difference (1 / (N - 1) = 0.2 for
  an even morph along one line; 1 when every image is a stranger to the next);
- ``A first-last``: channel A's mean activation on image 0 minus that on image N-1 (> 0: the first
  image is A's), and ``B last-first`` the other way round.

Tuning and validation pairs are disjoint (choose on the first, report the second)::

    python bench/interpolation.py --set tune --weights 1,0.5,0.25,0.1
    python bench/interpolation.py --set validate --weights 1,0.25
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile

import imageio.v3 as iio
import numpy as np

PAIRS = {
    "tune": ["blocks.4:5:42", "blocks.5:10:77"],
    "validate": ["blocks.4:11:60", "blocks.5:3:120", "blocks.3:7:30"],
}
N = 6
FLAGS = ["--size", "128x128", "--steps", "64", "--seed", "1", "-q"]


def render(pair: str, weight: float, folder: str, reuse: bool = False) -> list[np.ndarray]:
    """The N images of ``pair`` at ``weight`` (uint8 (H, W, 3) each); ``reuse``: those already in
    ``folder`` (from an earlier run with --keep)."""
    cnnvis = os.path.join(os.path.dirname(sys.executable), "cnnvis")
    out = os.path.join(folder, f"{pair.replace(':', '_')}_{weight}.png")
    stem = os.path.splitext(out)[0]
    if not (reuse and os.path.exists(f"{stem}_t{N - 1}.png")):
        cmd = [cnnvis, "prefer", "--interpolate", pair, "--batch", str(N), "--shared-weight", str(weight), *FLAGS]
        subprocess.run(cmd + ["--out", out], check=True)
    return [iio.imread(f"{stem}_t{i}.png")[..., :3] for i in range(N)]


@functools.cache
def _embedded_model():
    from cnnvis.models.registry import load_model

    return load_model()


def channel_means(images: list[np.ndarray], layer: str, channels: tuple[int, int]) -> np.ndarray:
    """(N, 2) mean activation of the two channels on each image (the embedded model, loaded once)."""
    import torch

    from cnnvis.models.capture import FeatureCapture

    m = _embedded_model()
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    with FeatureCapture(m.module, [layer]) as cap, torch.no_grad():
        a = cap(m.normalize(x))[layer]
    return a[:, list(channels)].mean((2, 3)).numpy()


def figures(images: list[np.ndarray], pair: str) -> dict[str, float]:
    grey = [im.astype(np.float64).mean(-1) for im in images]
    ends_r = float(np.corrcoef(grey[0].ravel(), grey[-1].ravel())[0, 1])
    steps = [np.abs(grey[i + 1] - grey[i]).mean() for i in range(len(grey) - 1)]
    ends = float(np.abs(grey[0] - grey[-1]).mean())
    layer, a, b = pair.rsplit(":", 2)
    acts = channel_means(images, layer, (int(a), int(b)))
    return {
        "ends r": ends_r,
        "ends diff": ends,
        "step max/mean": float(max(steps) / max(np.mean(steps), 1e-9)),
        "step / ends": float(np.mean(steps) / max(ends, 1e-9)),
        "A first-last": float(acts[0, 0] - acts[-1, 0]),
        "B last-first": float(acts[-1, 1] - acts[0, 1]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", choices=sorted(PAIRS), default="tune")
    ap.add_argument("--weights", default="1,0.5,0.25,0.1")
    ap.add_argument("--keep", default=None, help="a folder to keep the images in")
    ap.add_argument("--reuse", action="store_true", help="read the images an earlier --keep run left there")
    args = ap.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    folder = args.keep or tempfile.mkdtemp()
    os.makedirs(folder, exist_ok=True)
    keys = ["ends r", "ends diff", "step max/mean", "step / ends", "A first-last", "B last-first"]
    print(f"# {args.set} pairs, N={N}, {' '.join(FLAGS)}")
    print(f"| pair | shared weight | {' | '.join(keys)} |")
    print("|---|---|" + "---|" * len(keys))
    for pair in PAIRS[args.set]:
        for w in weights:
            f = figures(render(pair, w, folder, args.reuse), pair)
            print(f"| {pair} | {w} | " + " | ".join(f"{f[k]:.2f}" for k in keys) + " |", flush=True)


if __name__ == "__main__":
    main()
