"""Parameterizations of lucid's catalogue (issue 11): CPPN, alpha, low-resolution tensor.

Measured on the embedded EfficientNet-Lite0, whole-channel preferred images (``generate_image``
with a (C,) channel mask, the ``prefer`` defaults of the library) of ``blocks.4`` channels:

- ``cppn``: the channel's mean activation on the final 224x224 image (no transforms) for the CPPN
  against the Fourier image (and the low-resolution tensor, ``--lowres-factor`` 4); then the
  optimized CPPN rendered at 4096x4096 (``--final-size``): the seconds of that one forward pass
  against the optimization's.
- ``render``: run alone in a fresh process, the peak resident memory a 4096x4096 CPPN render adds
  (a CPPN of random weights, output layer included: the same work as an optimized one).
- ``alpha``: an RGBA Fourier image (``--alpha``) against the opaque one: its mean alpha, and the
  channel's mean activation of the image composited over random backgrounds (the pipeline's
  own :class:`cnnvis.regularize.transforms.Composite`, 16 draws) against the opaque render's.

Usage::

    python bench/params.py                       # both parts, 128 steps, channels 5 42 97
    python bench/params.py --part cppn --steps 64 --set cppn:lr=0.01
    python bench/params.py --part render         # the 4096x4096 CPPN render's memory, in a fresh process
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prefer import channel_activation  # noqa: E402  (the same metric as bench/prefer.py)

BACKGROUNDS = 16  # random backgrounds per alpha image


def _rss_gb() -> float:
    """Peak resident memory of this process so far, GB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def _mask(n: int, c: int) -> np.ndarray:
    return np.eye(n, dtype=np.float32)[c]


def _render(m, layer, n, c, size, steps, seed, options, final_size=None):
    """(image (H, W, C) in [0, 1], the last optimized image, optimization seconds, render-only
    seconds, peak RSS GB before the render-only pass)."""
    from cnnvis.recipes.recon import prefer_render, to_hwc

    r = prefer_render(
        m, layer, _mask(n, c), size=(size, size), steps=steps, seed=seed, final_size=final_size, **options
    )
    marks = {}

    def on_step(p):
        if p.step == p.total:
            marks["image"] = to_hwc(p.image())
            marks["optimized"], marks["rss"] = time.perf_counter(), _rss_gb()

    t0 = time.perf_counter()
    out = r.run(on_step)
    t1 = time.perf_counter()
    return to_hwc(out), marks["image"], marks["optimized"] - t0, t1 - marks["optimized"], marks["rss"]


def composited_activation(m, layer: str, c: int, rgba: np.ndarray, seed: int) -> float:
    """The channel's mean activation of an RGBA image over BACKGROUNDS random backgrounds, averaged."""
    from cnnvis.regularize.transforms import Composite

    x = torch.from_numpy(np.ascontiguousarray(rgba, dtype=np.float32)).permute(2, 0, 1)[None]
    gen = torch.Generator().manual_seed(seed)
    comp = Composite()
    acts = [channel_activation(m, layer, c, comp(x, gen)[0].permute(1, 2, 0).numpy()) for _ in range(BACKGROUNDS)]
    return float(np.mean(acts))


def _save(path: str, img: np.ndarray) -> None:
    import imageio.v3 as iio

    iio.imwrite(path, (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8))


def part_cppn(m, args, n, sets) -> None:
    print(
        f"\n## CPPN against the Fourier image, {args.size}x{args.size}, {args.steps} steps; "
        f"then the CPPN at {args.final}"
    )
    kinds = {"fft": dict(param="fft"), "cppn": dict(param="cppn"), "lowres": dict(param="lowres")}
    print("channel | " + " | ".join(f"{k} activation (s)" for k in kinds) + f" | cppn/fft | {args.final} render s")
    for c in args.channels:
        row = {}
        for k, opts in kinds.items():
            # the CPPN run also renders the final size: the activation is its optimized 224 image's
            final = args.final if k == "cppn" else None
            img, small_img, sec, render_s, rss_before = _render(
                m, args.layer, n, c, args.size, args.steps, args.seed, dict(opts, **sets.get(k, {})), final
            )
            row[k] = (channel_activation(m, args.layer, c, small_img), sec)
            if args.save_dir:
                _save(os.path.join(args.save_dir, f"ch{c}_{k}.png"), small_img)
            if k == "cppn":
                big, big_s = img, render_s
        small = row["cppn"][0]
        if args.save_dir:
            _save(os.path.join(args.save_dir, f"ch{c}_cppn_{args.final}.png"), big)
        down = torch.nn.functional.interpolate(
            torch.from_numpy(big).permute(2, 0, 1)[None], size=(args.size, args.size), mode="area"
        )
        again = channel_activation(m, args.layer, c, down[0].permute(1, 2, 0).numpy())
        cells = " | ".join(f"{row[k][0]:7.2f} ({row[k][1]:5.1f})" for k in kinds)
        print(
            f"{c:7d} | {cells} | {small / row['fft'][0]:.2f} | {big_s:5.1f}   "
            f"(the {args.final} image shrunk to {args.size}: activation {again:.2f})",
            flush=True,
        )


def part_render(args) -> None:
    from cnnvis.canvas.sizes import parse_size
    from cnnvis.config import RenderConfig
    from cnnvis.params import ParamContext
    from cnnvis.params.cppn import CPPN, CPPNParam

    size = parse_size(args.final, (args.size, args.size))
    ctx = ParamContext(
        RenderConfig(param="cppn"), torch.device("cpu"), torch.Generator().manual_seed(args.seed), (0.5, 0.5, 0.5)
    )
    net = CPPN.random(1, 3, ctx.gen, "cpu")
    with torch.no_grad():
        net.weights[-1].normal_(0, 0.3, generator=ctx.gen)
    p = CPPNParam(ctx, (args.size, args.size), net)
    base = _rss_gb()
    t = time.perf_counter()
    out = p.resized(size).canvas()
    sec = time.perf_counter() - t
    print(
        f"\n## a CPPN drawn at {size[0]}x{size[1]} in a fresh process: {sec:.1f} s, "
        f"{len(p.resized(size)._bands())} bands, peak RSS {_rss_gb():.2f} GB "
        f"(+{_rss_gb() - base:.2f} GB over the process before it; the image itself is {out.numel() * 4 / 1e9:.2f} GB)"
    )


def part_alpha(m, args, n, sets) -> None:
    print(f"\n## RGBA (--alpha) against opaque, Fourier image, {args.size}x{args.size}, {args.steps} steps")
    print(
        "channel | opaque activation | alpha: mean alpha | alpha: "
        "activation over random backgrounds | ratio to opaque | opaque over random backgrounds"
    )
    for c in args.channels:
        _, opaque, _, _, _ = _render(m, args.layer, n, c, args.size, args.steps, args.seed, dict(sets.get("fft", {})))
        _, rgba, _, _, _ = _render(
            m, args.layer, n, c, args.size, args.steps, args.seed, dict(dict(alpha=True), **sets.get("alpha", {}))
        )
        a_opaque = channel_activation(m, args.layer, c, opaque)
        a_rgba = composited_activation(m, args.layer, c, rgba, args.seed)
        # the opaque image under the same test: alpha 1 everywhere, so the backgrounds do not show
        a_same = composited_activation(
            m, args.layer, c, np.concatenate([opaque, np.ones_like(opaque[..., :1])], 2), args.seed
        )
        if args.save_dir:
            _save(os.path.join(args.save_dir, f"ch{c}_alpha.png"), rgba)
        print(
            f"{c:7d} | {a_opaque:7.2f} | {float(rgba[..., 3].mean()):.3f} | {a_rgba:7.2f} | {a_rgba / a_opaque:.2f} | "
            f"{a_same:7.2f}",
            flush=True,
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["cppn", "alpha", "render", "all"], default="all")
    ap.add_argument("--layer", default="blocks.4")
    ap.add_argument("--channels", type=int, nargs="+", default=[5, 42, 97])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--final", default="4096x4096", help="the size the optimized CPPN is rendered at")
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument(
        "--set",
        action="append",
        metavar="KIND:KEY=VALUE",
        help="extra option for one kind (fft, cppn, lowres, alpha), JSON value",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save-dir", default=None)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    if args.part == "render":  # alone: nothing else in the process's peak memory
        part_render(args)
        return 0
    from cnnvis.models.registry import load_model
    from cnnvis.recipes.recon import PREFER_DEFAULTS, PREFER_PARAM_DEFAULTS, layer_shape

    sets: dict[str, dict] = {}
    for item in args.set or ():
        kind, _, kv = item.partition(":")
        k, _, v = kv.partition("=")
        try:
            sets.setdefault(kind, {})[k] = json.loads(v)
        except json.JSONDecodeError:
            sets.setdefault(kind, {})[k] = v
    m = load_model("efficientnet-lite0")
    n = layer_shape(m, args.layer, (args.size, args.size))[0]
    if args.save_dir:
        os.makedirs(args.save_dir, exist_ok=True)
    import kornia

    print(
        f"machine: {platform.machine()} cpus={os.cpu_count()}; torch {torch.__version__}, kornia {kornia.__version__}; "
        f"threads={torch.get_num_threads()}"
    )
    print(
        f"efficientnet-lite0 {args.layer} ({n} channels), seed {args.seed}; PREFER_DEFAULTS {PREFER_DEFAULTS}; "
        f"per param {PREFER_PARAM_DEFAULTS}; extra {sets}"
    )
    if args.part in ("cppn", "all"):
        part_cppn(m, args, n, sets)
    if args.part in ("alpha", "all"):
        part_alpha(m, args, n, sets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
