"""Issue 23's targets: the CLI's defaults against float32, the same command otherwise.

    python bench/speed_targets.py dream     # 2048x2048 dreams of two validation photos (~20 min)
    python bench/speed_targets.py prefer    # 128-step preferred images of 8 blocks.4 channels (~10 min)

The dream runs the real ``cnnvis`` command in a fresh process, once with the defaults (``auto``:
bf16 and channels-last on a CPU with AVX512_BF16) and once with ``--precision fp32
--channels-last off --fold-batchnorm off`` (the path before issue 23), alternating, ``--repeats`` times.

- **dream**: ``cnnvis dream PHOTO`` at 2048x2048 (a validation photo of bench/photos.py, upscaled),
  every other setting the CLI's default. Reported: wall seconds (model load included) and the
  dream's gain, measured the same way for both outputs: the mean square activation of the dreamed
  layer (blocks.4.2) over the whole image in float32, minus the photo's own.
- **prefer**: 128 steps of a blocks.4 channel's preferred image, in process (:func:`prefer`).
  Reported: seconds and the channel's mean activation on the output, in float32, and over the
  channels the geometric means of the speed-up and of the activation ratio.

Figures are medians over repeats; the ratios compare runs of the same round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from photos import photo  # noqa: E402

CLI = os.path.join(os.path.dirname(sys.executable), "cnnvis")
# The path before issue 23: float32, contiguous weights, BatchNorm run on its own.
FP32 = ["--precision", "fp32", "--channels-last", "off", "--fold-batchnorm", "off"]
SETTINGS = {"default (auto)": [], "fp32": FP32}


def cnnvis(args: list[str]) -> float:
    """Wall seconds of one ``cnnvis`` command in a fresh process."""
    t = time.perf_counter()
    subprocess.run([CLI, *args, "--quiet"], check=True, capture_output=True)
    return time.perf_counter() - t


def mean_square(model, path: str, layer: str) -> float:
    """Mean square activation of ``layer`` over the whole image at ``path``, in float32."""
    import imageio.v3 as iio

    x = torch.from_numpy(iio.imread(path)[..., :3].copy()).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad(), model.capture([layer]) as cap:
        return float(cap(model.normalize(x))[layer].pow(2).mean())


def dream(args, model, folder: str) -> None:
    import imageio.v3 as iio

    print(f"dream at {args.side}x{args.side}, CLI defaults otherwise; median of {args.repeats}")
    print("| photo | setting | s | speed-up | gain (mean a^2, blocks.4.2) | gain ratio |")
    print("|---|---|---|---|---|---|")
    for name in args.photos:
        src = os.path.join(folder, f"{name}.png")
        iio.imwrite(src, (photo(name, args.side) * 255).round().astype(np.uint8))
        base = mean_square(model, src, "blocks.4.2")
        rows = {k: ([], []) for k in SETTINGS}
        for r in range(args.repeats):
            for key, extra in SETTINGS.items():
                out = os.path.join(folder, f"{name}_{r}_{key.split()[0]}.png")
                rows[key][0].append(cnnvis(["dream", src, "--out", out, *extra]))
                rows[key][1].append(mean_square(model, out, "blocks.4.2") - base)
        ref_t, ref_g = (statistics.median(v) for v in rows["fp32"])
        for key, (ts, gs) in rows.items():
            t, g = statistics.median(ts), statistics.median(gs)
            print(f"| {name} | {key} | {t:.0f} | {ref_t / t:.2f}x | {g:.3f} | {g / ref_g:.3f} |", flush=True)


def prefer(args, model, folder: str) -> None:
    """In process (the CLI's start-up is the same for both): 128 steps of ``generate_image``,
    prefer's Python API with its defaults. fp32 with channels-last changes only the order of float
    sums: its spread against fp32 is what a different summation alone does to an optimization
    this chaotic, the yardstick for bf16's."""
    import numpy as np

    from cnnvis.recipes.recon import generate_image

    settings = {"default (auto)": {}, "fp32, channels-last, folded": dict(precision="fp32", channels_last="on")}
    settings["fp32"] = dict(precision="fp32", channels_last="off", fold_batchnorm="off")
    channels = model.capture(["blocks.4"])
    with torch.no_grad(), channels as cap:
        n = cap(model.normalize(torch.rand(1, 3, 64, 64)))["blocks.4"].shape[1]
    print(f"prefer --layer blocks.4, {args.steps} steps, in process; median of {args.repeats}")
    print("| channel | setting | s | speed-up | activation | activation ratio |")
    print("|---|---|---|---|---|---|")
    ratios: dict[str, list] = {k: [] for k in settings}
    for kw in settings.values():  # first calls (oneDNN's kernels for each dtype and layout) outside the timing
        generate_image(model, "blocks.4", np.eye(n, dtype=np.float32)[0], steps=4, **kw)
    for c in args.channels:
        mask = np.zeros(n, np.float32)
        mask[c] = 1
        rows = {k: ([], []) for k in settings}
        for _ in range(args.repeats):
            for key, kw in settings.items():
                t = time.perf_counter()
                img = generate_image(model, "blocks.4", mask, steps=args.steps, **kw)
                rows[key][0].append(time.perf_counter() - t)
                x = torch.from_numpy(img).permute(2, 0, 1)[None]
                rows[key][1].append(channel_mean(model, x, "blocks.4", c))
        ref_t, ref_a = (statistics.median(v) for v in rows["fp32"])
        for key, (ts, acts) in rows.items():
            t, a = statistics.median(ts), statistics.median(acts)
            ratios[key].append((ref_t / t, a / ref_a))
            print(f"| {c} | {key} | {t:.1f} | {ref_t / t:.2f}x | {a:.2f} | {a / ref_a:.3f} |", flush=True)
    for key, rs in ratios.items():
        speed = float(np.exp(np.mean(np.log([r[0] for r in rs]))))
        act = float(np.exp(np.mean(np.log([max(r[1], 1e-3) for r in rs]))))
        print(f"| all (geometric mean) | {key} | | {speed:.2f}x | | {act:.3f} |")


def channel_mean(model, x: torch.Tensor, layer: str, channel: int) -> float:
    """Mean activation of ``channel`` at ``layer`` on ``x`` (1, 3, H, W) in [0, 1], float32."""
    with torch.no_grad(), model.capture([layer]) as cap:
        return float(cap(model.normalize(x))[layer][:, channel].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("target", choices=["dream", "prefer"])
    ap.add_argument("--side", type=int, default=2048)
    ap.add_argument("--photos", nargs="+", default=["china", "flower"], help="validation photos (bench/photos.py)")
    ap.add_argument("--channels", type=int, nargs="+", default=[3, 11, 22, 33, 44, 60, 77, 90])
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    np.random.seed(0)
    from cnnvis import load_model

    model = load_model("efficientnet-lite0")
    with tempfile.TemporaryDirectory() as folder:
        (dream if args.target == "dream" else prefer)(args, model, folder)


if __name__ == "__main__":
    main()
