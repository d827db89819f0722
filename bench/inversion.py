"""Feature-inversion quality and speed on the embedded model (issue 3's benchmark).

For each optimizer, layer and bundled photo (resized to SIDE x SIDE): reconstruct the photo
from its own features at that layer with ``cnnvis.invert_image`` and report seconds, pixel
correlation, SSIM, the colour error (mean CIE76 difference in Lab) and the normalized feature
error, then per optimizer, layer and set the mean (± its standard deviation over photos), the
lowest photo and each photo's correlation. The photos come in two sets (bench/photos.py):
``tuning``, the four the defaults were chosen on, and ``validation``, fourteen photos from other
packages that no default was chosen on; ``--sets tuning tuning-opencv`` adds nine more tuning photos.
``--optimizers default`` runs each layer's own default
(``--prior auto``: the shipped generator from stride 32); a named optimizer runs on pixels.

    python bench/inversion.py                       # 4 layers x 18 photos x 3 optimizers, 200 iterations
    python bench/inversion.py --sets validation --optimizers default   # the defaults on validation
    python bench/inversion.py --sets validation --optimizers adam lbfgs --layers blocks.1 blocks.3
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
import torch
from photos import SETS, photo  # bench/photos.py: the tuning / validation split
from tables import mean_sd  # bench/tables.py

from cnnvis.io.images import hwc_to_bchw
from cnnvis.models.registry import load_model
from cnnvis.priors.dgn import load_prior
from cnnvis.recipes.metrics import quality
from cnnvis.recipes.recon import invert_image


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", nargs="+", default=["blocks.1", "blocks.3", "blocks.5", "conv_head"])
    ap.add_argument(
        "--sets", nargs="+", default=["tuning", "validation"], choices=list(SETS), help="photo sets (bench/photos.py)"
    )
    ap.add_argument("--images", nargs="+", default=None, help="these photos instead of --sets")
    ap.add_argument(
        "--optimizers", nargs="+", default=["adam", "gd", "lbfgs"], help="or 'default': each layer's default"
    )
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--side", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="extra reconstruct option (Python literal)"
    )
    ap.add_argument("--save-dir", default=None)
    ap.add_argument("--json", default=None, help="write every row as JSON here")
    ap.add_argument(
        "--generator",
        default=None,
        help="invert through this generator file (the deep layers' default prior, in place of the shipped one)",
    )
    return ap.parse_args()


def extra_options(args: argparse.Namespace, model) -> dict:
    """The ``--set`` options as Python values, and ``--generator``'s prior."""
    extra = {}
    for kv in args.set:
        k, _, v = kv.partition("=")
        extra[k] = ast.literal_eval(v)
    if args.generator:
        extra["prior"] = load_prior(model, args.generator)  # every layer through it: run the deep ones only
    return extra


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    model = load_model("efficientnet-lite0")
    extra = extra_options(args, model)
    images = [(n, "chosen") for n in args.images] if args.images else [(n, s) for s in args.sets for n in SETS[s]]
    shown = {k: v for k, v in extra.items() if k != "prior"}
    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads, "
        f"{args.steps} iterations, {args.side}x{args.side}, extra={shown}, "
        f"generator {args.generator or 'shipped'}"
    )
    rows = []
    for opt in args.optimizers:
        for layer in args.layers:
            for name, photo_set in images:
                a = photo(name, args.side)
                t0 = time.perf_counter()
                # default: the layer's own (the shipped generator from stride 32); an optimizer: on pixels
                chosen = {} if opt == "default" else {"optimizer": opt, "prior": None}
                chosen = {**extra, **chosen}
                img, losses = invert_image(a, [layer], model, steps=args.steps, **chosen)
                dt = time.perf_counter() - t0
                q = quality(model, hwc_to_bchw(img), hwc_to_bchw(a), [layer])
                row = dict(
                    optimizer=opt,
                    layer=layer,
                    image=name,
                    set=photo_set,
                    seconds=dt,
                    pixel_correlation=q["pixel_correlation"],
                    ssim=q["ssim"],
                    lab_error=q["lab_error"],
                    feature_error=q["feature_error"][layer],
                    iterations=len(losses),
                )
                rows.append(row)
                print(
                    f"{opt:6s} {layer:10s} {name:10s} {dt:6.1f}s  corr {row['pixel_correlation']:.3f}  ssim "
                    f"{row['ssim']:.3f}  Lab {row['lab_error']:.1f}  ferr {row['feature_error']:.3f}",
                    flush=True,
                )
                if args.save_dir:
                    os.makedirs(args.save_dir, exist_ok=True)
                    cv2.imwrite(
                        os.path.join(args.save_dir, f"{opt}_{layer}_{name}.png"),
                        cv2.cvtColor((img * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR),
                    )
    print(
        "\n| set | optimizer | layer | iterations | s / image (median) | pixel corr (mean ± sd) | min | per photo "
        "| SSIM (mean) | Lab error (mean) | feature error (mean) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for photo_set in dict.fromkeys(s for _, s in images):
        for opt in args.optimizers:
            for layer in args.layers:
                rs = [r for r in rows if r["optimizer"] == opt and r["layer"] == layer and r["set"] == photo_set]
                each = " ".join(f"{r['pixel_correlation']:.2f}" for r in rs)
                print(
                    f"| {photo_set} | {opt} | {layer} | {rs[0]['iterations']} | "
                    f"{statistics.median(r['seconds'] for r in rs):.1f} | "
                    f"{mean_sd([r['pixel_correlation'] for r in rs])} | "
                    f"{min(r['pixel_correlation'] for r in rs):.2f} | {each} | "
                    f"{statistics.mean(r['ssim'] for r in rs):.3f} | "
                    f"{statistics.mean(r['lab_error'] for r in rs):.1f} | "
                    f"{statistics.mean(r['feature_error'] for r in rs):.3f} |"
                )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
