"""Seam check of a tiled 2048x2048 dream on the embedded model, with and without grid shift.

Usage:
    python bench/seams.py [--side 2048] [--steps 4] [--out-dir DIR]

Dreams on the bundled photo upscaled to ``side`` x ``side`` (one size, ``steps`` steps) and
measures where the dream changed the image: for each column c, the mean |delta[c] - delta[c-1]|
of the change delta = out - init (rows likewise). A seam is a line of extra change along a
tile border, so the figure is the mean of that energy on the unshifted grid's tile borders
divided by its median over all columns/rows: ~1.0 means no seams. Also writes the images
(JPEG) to --out-dir if given.
"""

from __future__ import annotations

import argparse
import os

import torch

from cnnvis import Dream, Render, RenderConfig, load_model
from cnnvis.canvas.sizes import resize
from cnnvis.canvas.start import Start
from cnnvis.canvas.tiling import axis_starts
from cnnvis.io.images import bundled_image_path, hwc_to_bchw, read_image, save_image, to_uint8


def border_ratio(delta: torch.Tensor, tile: int, overlap: int) -> float:
    """Mean change energy on the fixed grid's tile borders / median over all lines (both axes)."""
    ratios = []
    for dim in (-1, -2):
        d = delta.diff(dim=dim).abs().mean(dim=(0, 1, -2 if dim == -1 else -1))  # per line
        n = delta.shape[dim]
        starts = axis_starts(n, tile, overlap)
        borders = sorted({s for s in starts if s > 0} | {s + tile for s in starts if s + tile < n})
        ratios.append(float(d[[b - 1 for b in borders]].mean() / d.median()))
    return max(ratios)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--out-dir", default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    m = load_model("efficientnet-lite0")
    init = resize(hwc_to_bchw(read_image(bundled_image_path())), (args.side, args.side))
    print(f"{args.side}x{args.side}, {args.steps} steps, tile {m.input_size}, overlap {m.input_size // 4}")
    for shift in (True, False):
        cfg = RenderConfig(steps=args.steps, shift=shift, lr=0.02)
        out = Render(m, Dream("blocks.4.2"), cfg, Start(init=init)).run()
        r = border_ratio(out - init, m.input_size, m.input_size // 4)
        print(f"shift={'on ' if shift else 'off'}  border/median change energy: {r:.3f}", flush=True)
        if args.out_dir:
            os.makedirs(args.out_dir, exist_ok=True)
            save_image(
                os.path.join(args.out_dir, f"seams_{args.side}_shift_{'on' if shift else 'off'}.jpg"), to_uint8(out)
            )


if __name__ == "__main__":
    main()
