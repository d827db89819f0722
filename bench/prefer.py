"""Activation maximization: cnnvis ``generate_image`` against lucent's ``render_vis``.

Issue target: for a channel of a middle block at 224x224, reach at least the activation that
lucent's ``render_vis`` reaches in 256 steps, in half the steps or fewer, with an image that
reads as a feature visualization.

Both tools optimize the same network: the embedded EfficientNet-Lite0 (timm
tf_efficientnet_lite0, input RGB in [0, 1] normalized by mean 0.5, std 0.5). Lucent gets its
defaults: ``param.image(224)`` (FFT + decorrelated colour), ``transform.standard_transforms``,
Adam lr 5e-2, objective ``"blocks_4:c"`` (minus the mean of channel c), with our normalization
appended to its transforms in place of its torchvision ImageNet one (``preprocess=False``).
cnnvis runs ``generate_image`` with a (C,) channel mask.

Every final image is scored the same way: the mean activation of channel c at the layer, for
the 224x224 image in [0, 1], with no transforms.

Lucent is not a dependency of cnnvis. Install it beside the venv without touching it::

    pip install --no-deps --target /tmp/lucent_pkg torch-lucent decorator

then ``--lucent-path /tmp/lucent_pkg`` (the default). Two shims make lucent 0.1.8 run here: a
stub ``IPython.display`` (only used to show images in notebooks), and kornia >= 0.5's
``get_rotation_matrix2d`` / ``warp_affine`` aliased at kornia's top level where lucent looks.

Usage::

    python bench/prefer.py --save-dir /tmp/prefer/out
    python bench/prefer.py --no-lucent --set lr=0.03 --set jitter=16   # tuning cnnvis alone
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
import types

import numpy as np
import torch

# Extra generate_image options on top of cnnvis.recon.PREFER_DEFAULTS (none: the defaults are
# what this bench tuned). The tuning found a scaling bug in cnnvis.param (a spurious sqrt(H*W)
# on top of the "ortho" irfft2, 224x too strong at 224 px), fixed there; PREFER_DEFAULTS then
# use lucent's Fourier start with lr 0.1 and transforms milder than lucent's standard_transforms
# (jitter 8 + 4, zoom 0.9-1.1, rotation +-10 degrees): jitter 2, zoom 3 %, rotation 3 degrees.
BENCH_OPTIONS: dict = dict()  # the library defaults (PREFER_DEFAULTS), which this bench tuned


def _parse_set(items):
    out = {}
    for it in items or ():
        k, _, v = it.partition("=")
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def _import_lucent(path: str):
    if path and path not in sys.path:
        sys.path.insert(0, path)
    if "IPython" not in sys.modules:  # lucent.misc.io.showing imports IPython.display at import time
        ip = types.ModuleType("IPython")
        ip.display = types.ModuleType("IPython.display")
        sys.modules["IPython"], sys.modules["IPython.display"] = ip, ip.display
    import kornia
    from kornia.geometry.transform import get_rotation_matrix2d, warp_affine

    for name, fn in (("get_rotation_matrix2d", get_rotation_matrix2d), ("warp_affine", warp_affine)):
        if not hasattr(kornia, name):
            setattr(kornia, name, fn)
    from lucent.optvis import param, render, transform

    return param, render, transform


def channel_activation(m, layer: str, c: int, img: np.ndarray) -> float:
    """Mean activation of channel ``c`` at ``layer`` for an HxWx3 image in [0, 1], no transforms."""
    from cnnvis.models.capture import FeatureCapture

    x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).permute(2, 0, 1)[None].clamp(0, 1)
    with FeatureCapture(m.module, [layer], model_name=m.name) as cap, torch.no_grad():
        a = cap(m.normalize(x))[layer]
    return float(a[0, c].mean())


def render_lucent(lucent, m, objective, steps: int, size: int, seed: int, batch: int = 1) -> np.ndarray:
    """lucent's ``render_vis`` of ``objective`` on a copy of the network, with our normalization:
    the final images, float32 (B, H, W, 3) in [0, 1]."""
    param, render, transform = lucent
    np.random.seed(seed)
    torch.manual_seed(seed)
    net = copy.deepcopy(m.module).eval()  # lucent leaves a hook on every module: give it its own copy
    mean = torch.tensor(m.mean).view(1, 3, 1, 1)
    std = torch.tensor(m.std).view(1, 3, 1, 1)
    transforms = list(transform.standard_transforms) + [lambda x: (x - mean) / std]
    imgs = render.render_vis(
        net,
        objective,
        param_f=lambda: param.image(size, batch=batch),
        transforms=transforms,
        thresholds=(steps,),
        preprocess=False,
        progress=False,
        show_image=False,
    )
    return np.asarray(imgs[-1], np.float32)


def run_lucent(lucent, m, layer: str, c: int, steps: int, size: int, seed: int) -> np.ndarray:
    return render_lucent(lucent, m, f"{layer.replace('.', '_')}:{c}", steps, size, seed)[0]


def run_cnnvis(m, layer: str, c: int, n_channels: int, steps: int, size: int, options: dict) -> np.ndarray:
    from cnnvis.recipes.recon import generate_image

    return generate_image(m, layer, np.eye(n_channels, dtype=np.float32)[c], size=(size, size), steps=steps, **options)


def _save(path: str, img: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)


def add_run_options(ap) -> None:
    """The options every bench script against lucent takes (this one and bench/catalogue.py)."""
    ap.add_argument("--no-lucent", action="store_true")
    ap.add_argument("--lucent-path", default="/tmp/lucent_pkg")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save-dir", default=None)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layer", default="blocks.4")
    ap.add_argument("--channels", type=int, nargs="+", default=[5, 42, 97])
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--lucent-steps", type=int, default=256)
    ap.add_argument("--steps", type=int, nargs="+", default=[128, 64], help="cnnvis step counts to run")
    ap.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="extra generate_image option (JSON value), repeatable"
    )
    ap.add_argument(
        "--defaults-only", action="store_true", help="run cnnvis with PREFER_DEFAULTS only (ignore BENCH_OPTIONS)"
    )
    add_run_options(ap)
    return ap


def _print_header(args, n_channels: int, options: dict) -> None:
    import kornia
    import timm

    from cnnvis.recipes.recon import PREFER_DEFAULTS

    print(
        f"machine: {platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()}; torch {torch.__version__}, "
        f"timm {timm.__version__}, "
        f"kornia {kornia.__version__}; threads={torch.get_num_threads()}"
    )
    print(
        f"model efficientnet-lite0, layer {args.layer} ({n_channels} channels), {args.size}x{args.size}, "
        f"seed {args.seed}"
    )
    print(f"cnnvis: PREFER_DEFAULTS {PREFER_DEFAULTS}")
    print(f"cnnvis: options on top {options}")


def _run_channel(args, m, lucent, c: int, n_channels: int, options: dict, cols: list[str]) -> dict:
    """lucent (unless --no-lucent) and cnnvis at each step count on channel ``c``: {column: (activation, seconds)}."""
    row = {}
    if lucent:
        t = time.perf_counter()
        img = run_lucent(lucent, m, args.layer, c, args.lucent_steps, args.size, args.seed)
        row[cols[0]] = (channel_activation(m, args.layer, c, img), time.perf_counter() - t)
        if args.save_dir:
            _save(os.path.join(args.save_dir, f"ch{c}_lucent{args.lucent_steps}.png"), img)
    for s in args.steps:
        t = time.perf_counter()
        img = run_cnnvis(m, args.layer, c, n_channels, s, args.size, dict(options, seed=args.seed))
        row[f"cnnvis@{s}"] = (channel_activation(m, args.layer, c, img), time.perf_counter() - t)
        if args.save_dir:
            _save(os.path.join(args.save_dir, f"ch{c}_cnnvis{s}.png"), img)
    line = "  ".join(f"{k} {a:8.3f} ({sec:5.1f}s)" for k, (a, sec) in row.items())
    if lucent:
        line += "  ratio " + " ".join(f"{row[k][0] / row[cols[0]][0]:.2f}" for k in cols[1:])
    print(f"channel {c:4d}: {line}", flush=True)
    return row


def _print_table(rows, cols: list[str], with_lucent: bool) -> None:
    print()
    print("mean activation of the channel at the layer, final 224x224 image, no transforms (seconds in brackets)")
    print(
        "channel | "
        + " | ".join(f"{k:>18s}" for k in cols)
        + (" | " + " | ".join(f"ratio {k[7:]}/lucent" for k in cols[1:]) if with_lucent else "")
    )
    for c, row in rows:
        s = f"{c:7d} | " + " | ".join(f"{row[k][0]:8.3f} ({row[k][1]:5.1f}s)" for k in cols)
        if with_lucent:
            s += " | " + " | ".join(f"{row[k][0] / row[cols[0]][0]:>16.2f}" for k in cols[1:])
        print(s)


def _print_targets(args, rows, lucent_col: str) -> None:
    """Whether cnnvis at each step count up to half lucent's matches lucent on every channel."""
    for s in args.steps:
        if 2 * s <= args.lucent_steps:
            ok = all(row[f"cnnvis@{s}"][0] >= row[lucent_col][0] for _, row in rows)
            print(
                f"target: cnnvis at {s} steps >= lucent at {args.lucent_steps} on every channel: "
                f"{'MET' if ok else 'not met'}"
            )


def main(argv=None) -> int:
    args = _parser().parse_args(argv)

    torch.set_num_threads(args.threads)
    from cnnvis.models.registry import load_model
    from cnnvis.recipes.recon import layer_shape

    options = {} if args.defaults_only else dict(BENCH_OPTIONS)
    options.update(_parse_set(args.set))
    m = load_model("efficientnet-lite0")
    n_channels = layer_shape(m, args.layer, (args.size, args.size))[0]
    lucent = None if args.no_lucent else _import_lucent(args.lucent_path)
    if args.save_dir:
        os.makedirs(args.save_dir, exist_ok=True)
    _print_header(args, n_channels, options)

    cols = ([f"lucent@{args.lucent_steps}"] if lucent else []) + [f"cnnvis@{s}" for s in args.steps]
    rows = [(c, _run_channel(args, m, lucent, c, n_channels, options, cols)) for c in args.channels]
    _print_table(rows, cols, bool(lucent))
    if lucent:
        _print_targets(args, rows, cols[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
