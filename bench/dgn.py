"""The DGN prior against plain pixel priors on the embedded model (issue 4's benchmark).

Inversion: for each layer and photo of the tuning and validation sets (bench/photos.py; the demo
generator never saw the validation photos: scripts/export_bundled_photos.py), reconstruct the
photo from its own features with ``cnnvis.invert_image``, once with the tuned pixel-space
defaults and once through the demo generator (``prior=load_prior(model)``: half the steps on the
latent, half refining its image with the pixel defaults), same number of iterations; report
pixel correlation, SSIM, normalized feature error, seconds per iteration and the grid ratio at
stride 16 (:func:`cnnvis.recipes.metrics.grid_ratio`, on the 8-bit outputs of each layer, prior
and set pooled; the photos' own pooled ratio beside them).

Sizes: seconds per iteration of a whole-channel preferred image at growing canvas sizes, with
and without the prior (its latent map grows with the canvas).

Preferred images: for each unit, ``cnnvis.generate_image`` with the tuned Fourier defaults and
with the prior; report the unit's activation on the final image (no transforms), seconds per
iteration, and the grid ratio of each prior's images pooled.

    python bench/dgn.py                                    # everything, 200 / 128 iterations
    python bench/dgn.py --part sizes --sizes 224 448 896   # s / iteration against canvas size
    python bench/dgn.py --part prefer --set latent_lr=0.1  # try another latent step size
    python bench/dgn.py --generator my_gen.pt --save-dir /tmp/dgn
    python bench/dgn.py --part decode --generator a.pt --generator b.pt   # generators side by side
    python bench/dgn.py --part dream --generator a.pt --generator b.pt    # their dreams of the validation photos
    python bench/dgn.py --part invert --sets validation --arms dgn        # the prior only (the baseline does not
                                                                          # change with it)

Decode: each generator draws every photo of both sets from the photo's own features (one
forward pass, no optimization): the pixel correlation with the photo, and the grid ratio of
the drawings pooled per set (the generator's own grid, before any optimization adds one).
"""

from __future__ import annotations

import argparse
import ast
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
from cnnvis.models.capture import FeatureCapture
from cnnvis.models.registry import load_model
from cnnvis.priors.dgn import load_prior
from cnnvis.recipes.metrics import grid_ratio, lattice_ratios, quality
from cnnvis.recipes.recon import generate_image, invert_image, unit_mask


def _save(d, name, img):
    if d:
        os.makedirs(d, exist_ok=True)
        cv2.imwrite(
            os.path.join(d, name), cv2.cvtColor((np.clip(img, 0, 1) * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR)
        )


def _u8(img) -> torch.Tensor:
    """(H, W, 3) in [0, 1] -> (1, 3, H, W) as its 8-bit PNG would hold it."""
    return hwc_to_bchw(np.round(np.clip(img, 0, 1) * 255) / 255)


def _grid(images) -> str:
    """The stride-16 grid ratio (x / y) and, after it, the lattice: the spectrum's peak at 2, 4, 8 and
    16 px over the neighbouring frequencies (issue 24; photos about 1, target <= 1.5)."""
    x = torch.cat(images)
    gx, gy = grid_ratio(x, 16)
    lattice = "/".join(f"{v:.1f}" for v in lattice_ratios(x).values())
    return f"{gx:.2f} / {gy:.2f}; lattice {lattice}"


def bench_invert(model, prior, args, extra):
    rows = []
    images = [(n, "chosen") for n in args.images] if args.images else [(n, s) for s in args.sets for n in SETS[s]]
    for layer in args.layers:
        for name, photo_set in images:
            a = photo(name, args.side)
            pixels = {"prior": None, **_literals(args.baseline_set)}  # not --prior auto: the pixel priors
            for label, kw in _arms(args, "pixel", pixels, {"prior": prior, **extra}):
                t0 = time.perf_counter()
                img, losses = invert_image(a, [layer], model, steps=args.steps, **kw)
                dt = time.perf_counter() - t0
                q = quality(model, hwc_to_bchw(img), hwc_to_bchw(a), [layer])
                rows.append(
                    dict(
                        prior=label,
                        layer=layer,
                        image=name,
                        set=photo_set,
                        s_per_it=dt / len(losses),
                        corr=q["pixel_correlation"],
                        ssim=q["ssim"],
                        lab=q["lab_error"],
                        ferr=q["feature_error"][layer],
                        out=_u8(img),
                        photo=_u8(a),
                    )
                )
                print(
                    f"{label:5s} {layer:10s} {name:10s} {dt / len(losses) * 1000:6.0f} ms/it  corr "
                    f"{rows[-1]['corr']:.3f}  ssim {rows[-1]['ssim']:.3f}  Lab {rows[-1]['lab']:.1f}  "
                    f"ferr {rows[-1]['ferr']:.3f}",
                    flush=True,
                )
                _save(args.save_dir, f"invert_{label}_{layer}_{name}.png", img)
    print(
        "\n| set | layer | prior | pixel corr (mean ± sd) | min | per photo | SSIM (mean) | Lab error (mean) "
        "| feature error (mean) | s / iteration (median) | grid x / y (photos) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for photo_set in dict.fromkeys(s for _, s in images):
        for layer in args.layers:
            for label in dict.fromkeys(r["prior"] for r in rows):
                rs = [r for r in rows if r["layer"] == layer and r["prior"] == label and r["set"] == photo_set]
                each = " ".join(f"{r['corr']:.2f}" for r in rs)
                print(
                    f"| {photo_set} | {layer} | {label} | {mean_sd([r['corr'] for r in rs])} | "
                    f"{min(r['corr'] for r in rs):.2f} | {each} | {statistics.mean(r['ssim'] for r in rs):.3f} | "
                    f"{statistics.mean(r['lab'] for r in rs):.1f} | {statistics.mean(r['ferr'] for r in rs):.3f} | "
                    f"{statistics.median(r['s_per_it'] for r in rs):.3f} | "
                    f"{_grid([r['out'] for r in rs])} ({_grid([r['photo'] for r in rs])}) |"
                )
    if len({r["set"] for r in rows}) > 1:  # pooled over every photo: the photos' own ratio falls to about 1.07
        print("\n| layer | prior | grid x / y, every photo pooled (photos) |")
        print("|---|---|---|")
        for layer in args.layers:
            for label in dict.fromkeys(r["prior"] for r in rows):
                rs = [r for r in rows if r["layer"] == layer and r["prior"] == label]
                print(f"| {layer} | {label} | {_grid([r['out'] for r in rs])} ({_grid([r['photo'] for r in rs])}) |")


def _literals(pairs) -> dict:
    return {k: ast.literal_eval(v) for k, _, v in (kv.partition("=") for kv in pairs)}


def _arms(args, baseline: str, plain: dict, dgn: dict) -> list[tuple[str, dict]]:
    """The runs to compare (--arms): the baseline (pixel or Fourier defaults), then the prior."""
    return [(label, kw) for arm, label, kw in (("baseline", baseline, plain), ("dgn", "dgn", dgn)) if arm in args.arms]


def activation(model, layer, mask, img) -> float:
    with FeatureCapture(model.module, [layer]) as cap, torch.no_grad():
        f = cap(model.normalize(hwc_to_bchw(img)))[layer][0]
    return float((f * torch.as_tensor(mask)).sum())


def bench_prefer(model, prior, args, extra):
    print("\n| unit | prior | activation | s / iteration | grid x / y |")
    print("|---|---|---|---|---|")
    size = (model.input_size, model.input_size)
    outs: dict[str, list] = {label: [] for label, _ in _arms(args, "fourier", {}, {})}
    for unit in args.units:
        layer, ch = unit.split(":")
        mask = unit_mask(model, layer, int(ch), None, None, size)
        for label, kw in _arms(args, "fourier", {}, {"prior": prior, **extra}):
            t0 = time.perf_counter()
            img = generate_image(model, layer, mask, steps=args.prefer_steps, **kw)
            dt = (time.perf_counter() - t0) / args.prefer_steps
            outs[label].append(_u8(img))
            print(
                f"| {unit} | {label} | {activation(model, layer, mask, img):.2f} | {dt:.3f} | "
                f"{_grid(outs[label][-1:])} |",
                flush=True,
            )
            _save(args.save_dir, f"prefer_{label}_{layer}_{ch}.png", img)
    for label, images in outs.items():
        print(f"| all units | {label} | | | {_grid(images)} |")


def bench_decode(model, args) -> None:
    from cnnvis.priors.dgn import encode
    from cnnvis.recipes.metrics import pixel_correlation

    print(
        "\n| generator | set | pixel corr of G(features) (mean) | per photo | grid x / y of G(features) "
        "| grid x / y of the photos |"
    )
    print("|---|---|---|---|---|---|")
    for k, path in enumerate(args.generator or [None]):
        prior = load_prior(model, path, lattice=args.dgn_lattice)
        for photo_set, names in SETS.items():
            outs, photos, corrs = [], [], []
            for name in names:
                x = hwc_to_bchw(photo(name, args.side))
                with torch.no_grad():
                    y = prior.draw(encode(prior, model, x, (args.side, args.side))).float()
                y = y[..., : args.side, : args.side]
                corrs.append(pixel_correlation(y, x))
                outs.append(torch.round(y * 255) / 255)
                photos.append(torch.round(x * 255) / 255)
                _save(args.save_dir, f"decode_{k}_{name}.png", y[0].permute(1, 2, 0).numpy())
            print(
                f"| {path or 'demo'} | {photo_set} | {statistics.mean(corrs):.3f} | "
                f"{' '.join(f'{c:.2f}' for c in corrs)} | {_grid(outs)} | {_grid(photos)} |",
                flush=True,
            )


def bench_dream(model, args) -> None:
    """A dream through each generator (``cnnvis dream PHOTO --prior dgn``, its defaults) of every
    validation photo at --side: the grid and the lattice of the dreams, pooled."""
    import subprocess
    import sys
    import tempfile

    cnnvis = os.path.join(os.path.dirname(sys.executable), "cnnvis")
    print("\n| generator | dreams of the validation photos: grid x / y; lattice at 2/4/8/16 px | s / dream |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for k, path in enumerate(args.generator or [None]):
            outs, seconds = [], []
            for name in SETS["validation"]:
                src, out = os.path.join(tmp, f"{name}.png"), os.path.join(tmp, f"dream_{k}_{name}.png")
                _save(tmp, f"{name}.png", photo(name, args.side))
                gen = ["--generator", path] if path else []
                t0 = time.perf_counter()
                lattice = ["--dgn-lattice", args.dgn_lattice]
                subprocess.run([cnnvis, "dream", src, "--prior", "dgn", *gen, *lattice, "-q", "--out", out], check=True)
                seconds.append(time.perf_counter() - t0)
                outs.append(hwc_to_bchw(cv2.cvtColor(cv2.imread(out), cv2.COLOR_BGR2RGB) / 255.0))
                if args.save_dir:
                    _save(args.save_dir, f"dream_{k}_{name}.png", outs[-1][0].permute(1, 2, 0).numpy())
            print(f"| {path or 'demo'} | {_grid(outs)} | {statistics.median(seconds):.0f} |", flush=True)


def bench_sizes(model, prior, args, extra):
    """Seconds per iteration against canvas size: the spatial latent grows with the canvas."""
    print("\n| canvas | prior | s / iteration (median of steps) |")
    print("|---|---|---|")
    for side in args.sizes:
        size = (side, side)
        mask = np.zeros(_channels(model, "blocks.4"), np.float32)
        mask[5] = 1
        for label, kw in (("fourier", {}), ("dgn", {"prior": prior, **extra})):
            times, last = [], [time.perf_counter()]

            def tick(p):
                now = time.perf_counter()
                times.append(now - last[0])
                last[0] = now

            generate_image(model, "blocks.4", mask, size=size, steps=args.size_steps, callback=tick, **kw)
            print(f"| {side}x{side} | {label} | {statistics.median(times[1:]):.3f} |", flush=True)


def _channels(model, layer) -> tuple[int]:
    from cnnvis.recipes.recon import layer_shape

    return (layer_shape(model, layer, (model.input_size, model.input_size))[0],)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["all", "invert", "prefer", "sizes", "decode", "dream"], default="all")
    ap.add_argument("--sizes", nargs="+", type=int, default=[224, 448, 896])
    ap.add_argument("--size-steps", type=int, default=6)
    ap.add_argument("--layers", nargs="+", default=["blocks.1", "blocks.3", "blocks.5", "conv_head"])
    ap.add_argument(
        "--sets", nargs="+", default=["tuning", "validation"], choices=list(SETS), help="photo sets (bench/photos.py)"
    )
    ap.add_argument("--images", nargs="+", default=None, help="these photos instead of --sets")
    ap.add_argument("--units", nargs="+", default=["blocks.4:5", "blocks.4:42", "blocks.4:97", "classifier:285"])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--prefer-steps", type=int, default=128)
    ap.add_argument("--side", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--generator",
        action="append",
        default=None,
        help="generator file [default: the shipped demo generator]; --part decode takes several",
    )
    ap.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="extra option for the DGN runs (Python literal)"
    )
    ap.add_argument(
        "--baseline-set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra option for the pixel baseline's inversions (Python literal)",
    )
    ap.add_argument(
        "--arms",
        nargs="+",
        choices=["baseline", "dgn"],
        default=["baseline", "dgn"],
        help="the pixel / Fourier defaults, the prior, or both (the baseline does not depend on the generator)",
    )
    ap.add_argument(
        "--dgn-lattice", choices=["remove", "keep"], default="remove", help="the prior's lattice removal (issue 24)"
    )
    ap.add_argument("--save-dir", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    extra = _literals(args.set)
    model = load_model("efficientnet-lite0")
    if args.part in ("decode", "dream"):
        (bench_decode if args.part == "decode" else bench_dream)(model, args)
        return
    prior = load_prior(model, args.generator[0] if args.generator else None, lattice=args.dgn_lattice)
    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads, "
        f"generator {args.generator or 'demo'}, --dgn-lattice {args.dgn_lattice}, extra={extra}"
    )
    if args.part in ("all", "invert"):
        bench_invert(model, prior, args, extra)
    if args.part in ("all", "prefer"):
        bench_prefer(model, prior, args, extra)
    if args.part in ("all", "sizes"):
        bench_sizes(model, prior, args, extra)


if __name__ == "__main__":
    main()
