"""Peak memory (RSS) and step time of a tiled dream at several canvas sizes, each in a fresh process.

Usage:
    python bench/dream_memory.py                       # 512 1024 2048 4096, 2 steps each
    python bench/dream_memory.py --untiled             # also the untiled baseline up to 2048
    python bench/dream_memory.py --cli                 # the `cnnvis dream PHOTO` command itself
    python bench/dream_memory.py --precision fp32 --channels-last off --fold-batchnorm off   # the float32 path

Prints one line per size: peak RSS (GB), median seconds per step, and microseconds per pixel
per step (flat when the pipeline scales linearly). ``--untiled`` also measures a plain PyTorch
dream step on the whole canvas at once (what untiled tools do), for comparison. ``--cli`` runs
the real command on the bundled photo upscaled to each size (default 4 octaves, 1 step each,
image init, file written) and reports its peak RSS and wall time instead.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, resource, sys, time, torch
torch.set_num_threads({threads})
from cnnvis import Dream, Render, RenderConfig, load_model
side, steps, untiled = {side}, {steps}, {untiled}
m = load_model("efficientnet-lite0")
times = []
if untiled:
    # A plain untiled dream step: the whole canvas through the network in one pass.
    x = torch.rand(1, 3, side, side, requires_grad=True)
    from cnnvis.models.capture import FeatureCapture
    with FeatureCapture(m.module, ["blocks.4.2"]) as cap:
        for _ in range(steps):
            t = time.perf_counter()
            a = cap(m.normalize(x))["blocks.4.2"]
            (g,) = torch.autograd.grad(a.pow(2).mean(), x)
            with torch.no_grad():
                x += 0.01 * g / g.abs().mean()
            times.append(time.perf_counter() - t)
else:
    cfg = RenderConfig(final_size=f"{{side}}x{{side}}", steps=steps, batch_size=4, **{compute})
    r = Render(m, Dream("blocks.4.2"), cfg)
    last = [time.perf_counter()]
    def cb(p):
        now = time.perf_counter(); times.append(now - last[0]); last[0] = now
    r.run(cb)
peak_rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
print(json.dumps({{"side": side, "peak_rss_gb": peak_rss_gb, "step_s": times}}))
"""


def run(side: int, steps: int, untiled: bool, threads: int, compute: dict) -> dict:
    code = CHILD.format(side=side, steps=steps, untiled=untiled, threads=threads, compute=repr(compute))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        return {
            "side": side,
            "error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}",
        }
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_cli(side: int, steps: int, threads: int, compute: dict) -> dict:
    """Peak RSS (GB) and wall seconds of `cnnvis dream PHOTO --steps N` on a side x side photo."""
    import cv2
    import imageio.v3 as iio

    from cnnvis.io.images import bundled_image_path

    with tempfile.TemporaryDirectory() as d:
        photo = os.path.join(d, "photo.png")
        iio.imwrite(photo, cv2.resize(iio.imread(bundled_image_path()), (side, side), interpolation=cv2.INTER_CUBIC))
        exe = shutil.which("cnnvis") or os.path.join(os.path.dirname(sys.executable), "cnnvis")
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        # A fresh `time -v`-style measurement: the child's own peak, via wait4's rusage.
        t = time.perf_counter()
        proc = subprocess.Popen(
            [exe, "dream", photo, "--steps", str(steps), "-q", "--out", os.path.join(d, "out.jpg"), *_flags(compute)],
            env=env,
            stderr=subprocess.PIPE,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        if os.waitstatus_to_exitcode(status) != 0:
            return {"side": side, "error": proc.stderr.read().decode().strip().splitlines()[-1]}
        return {"side": side, "peak_rss_gb": usage.ru_maxrss / 1e6, "wall_s": wall}


def _flags(compute: dict) -> list[str]:
    return [x for k, v in compute.items() for x in ("--" + k.replace("_", "-"), str(v))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    ap.add_argument("--steps", type=int, default=2, help="steps per size; the median step time is reported")
    ap.add_argument(
        "--untiled", action="store_true", help="also run the untiled baseline at each size up to --untiled-max"
    )
    ap.add_argument(
        "--untiled-max", type=int, default=2048, help="largest side for the untiled baseline (4096 needs ~25 GB)"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cli", action="store_true", help="measure the cnnvis dream command on a photo instead")
    ap.add_argument("--precision", default="auto", help="the network's dtype (auto, fp32, bf16)")
    ap.add_argument("--channels-last", default="auto", help="auto, on or off")
    ap.add_argument("--fold-batchnorm", default="auto", help="auto, on or off")
    ap.add_argument("--fp32-strided-depthwise", default="auto", help="auto, on or off")
    args = ap.parse_args()
    compute = dict(
        precision=args.precision,
        channels_last=args.channels_last,
        fold_batchnorm=args.fold_batchnorm,
        fp32_strided_depthwise=args.fp32_strided_depthwise,
    )
    if args.cli:
        print(f"{'cnnvis dream PHOTO (4 octaves)':32} {'side':>5} {'peak RSS GB':>11} {'wall s':>7}")
        for side in args.sizes:
            r = run_cli(side, args.steps, args.threads, compute)
            if "error" in r:
                print(f"{'':32} {side:>5} failed: {r['error']}")
            else:
                print(f"{'':32} {side:>5} {r['peak_rss_gb']:>11.2f} {r['wall_s']:>7.1f}", flush=True)
        return
    print(f"{'mode':8} {'side':>5} {'peak RSS GB':>11} {'s/step':>8} {'us/px/step':>10}")
    for side in args.sizes:
        for mode in ["tiled", "untiled"] if args.untiled and side <= args.untiled_max else ["tiled"]:
            r = run(side, args.steps, mode == "untiled", args.threads, compute)
            if "error" in r:
                print(f"{mode:8} {side:>5} failed: {r['error']}")
                continue
            # Skip the first step when there are more: it includes one-off warm-up.
            ts = r["step_s"][1:] if len(r["step_s"]) > 1 else r["step_s"]
            med = statistics.median(ts)
            print(f"{mode:8} {side:>5} {r['peak_rss_gb']:>11.2f} {med:>8.2f} {1e6 * med / side**2:>10.3f}", flush=True)


if __name__ == "__main__":
    main()
