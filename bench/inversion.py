"""Feature-inversion quality and speed on the embedded model (issue 3's benchmark).

For each optimizer, layer and skimage photo (resized to SIDE x SIDE): reconstruct the photo
from its own features at that layer with ``cnnvis.invert_image`` and report seconds, pixel
correlation, SSIM and the normalized feature error, then the mean per optimizer and layer.

    python bench/inversion.py                       # 4 layers x 4 photos x 3 optimizers, 200 iterations
    python bench/inversion.py --optimizers adam --layers blocks.5 --set tv_weight=4 --set lr=0.05
    python bench/inversion.py --save-dir /tmp/inv   # also write every reconstruction as PNG
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import statistics
import time

import cv2
import numpy as np
import skimage.data
import torch

from cnnvis.io.images import hwc_to_bchw
from cnnvis.models.registry import load_model
from cnnvis.recipes.metrics import quality
from cnnvis.recipes.recon import invert_image


def photo(name: str, side: int) -> np.ndarray:
    a = getattr(skimage.data, name)()
    h, w = a.shape[:2]
    s = min(h, w)  # centre square crop, then area resize
    a = a[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return cv2.resize(a, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", nargs="+", default=["blocks.1", "blocks.3", "blocks.5", "conv_head"])
    ap.add_argument("--images", nargs="+", default=["chelsea", "coffee", "astronaut", "rocket"])
    ap.add_argument("--optimizers", nargs="+", default=["adam", "gd", "lbfgs"])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--side", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra reconstruct option (Python literal)")
    ap.add_argument("--save-dir", default=None)
    ap.add_argument("--json", default=None, help="write every row as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    extra = {}
    for kv in args.set:
        k, _, v = kv.partition("=")
        extra[k] = ast.literal_eval(v)
    model = load_model("efficientnet-lite0")
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads, {args.steps} iterations, {args.side}x{args.side}, extra={extra}")
    rows = []
    for opt in args.optimizers:
        for layer in args.layers:
            for name in args.images:
                a = photo(name, args.side)
                t0 = time.perf_counter()
                img, losses = invert_image(a, [layer], model, optimizer=opt, steps=args.steps, **extra)
                dt = time.perf_counter() - t0
                q = quality(model, hwc_to_bchw(img), hwc_to_bchw(a), [layer])
                row = dict(optimizer=opt, layer=layer, image=name, seconds=dt, pixel_correlation=q["pixel_correlation"], ssim=q["ssim"], feature_error=q["feature_error"][layer], iterations=len(losses))
                rows.append(row)
                print(f"{opt:6s} {layer:10s} {name:10s} {dt:6.1f}s  corr {row['pixel_correlation']:.3f}  ssim {row['ssim']:.3f}  ferr {row['feature_error']:.3f}", flush=True)
                if args.save_dir:
                    os.makedirs(args.save_dir, exist_ok=True)
                    cv2.imwrite(os.path.join(args.save_dir, f"{opt}_{layer}_{name}.png"), cv2.cvtColor((img * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR))
    print("\n| optimizer | layer | iterations | s / image (median) | pixel corr (mean) | SSIM (mean) | feature error (mean) |")
    print("|---|---|---|---|---|---|---|")
    for opt in args.optimizers:
        for layer in args.layers:
            rs = [r for r in rows if r["optimizer"] == opt and r["layer"] == layer]
            print(f"| {opt} | {layer} | {rs[0]['iterations']} | {statistics.median(r['seconds'] for r in rs):.1f} | "
                  f"{statistics.mean(r['pixel_correlation'] for r in rs):.3f} | {statistics.mean(r['ssim'] for r in rs):.3f} | {statistics.mean(r['feature_error'] for r in rs):.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
