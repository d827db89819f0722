"""Overhead of a cnnvis dream step over the bare forward+backward of the same tiles.

Usage:
    python bench/dream_overhead.py [--side 512] [--repeats 7] [--device cpu|cuda|mps|auto]

Both are measured in one run, interleaved, on the embedded EfficientNet-Lite0 at layer
blocks.4.2. The bare loop is what a hand-written minimal dream does for the same tiles: cut
the network after blocks.4.2 (``conv_stem -> bn1 -> blocks[:5]``), forward a batch, backward
mean(a^2) to the input. The cnnvis step adds the tile layout, blend weights, gradient scatter,
TV regularizer (strip by strip) and the RMSProp update over the canvas. Prints the median of
``--repeats`` steps for each, the ratio of those medians and the median of the per-round
ratios (each round runs both back to back, which cancels drift); also the full-network
bare time for reference. ``--device`` (default cpu) runs both on that device; on a GPU every
timing synchronizes the device first, so queued kernels are counted in the step that ran them.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from cnnvis import Dream, Render, RenderConfig, load_model, pick_device
from cnnvis.canvas.start import Start
from cnnvis.canvas.tiling import layout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto (default cpu)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elif device.type == "mps":
            torch.mps.synchronize()

    m = load_model("efficientnet-lite0").to(device)
    net = m.module
    cfg = RenderConfig(final_size=f"{args.side}x{args.side}", steps=2, batch_size=args.batch_size, shift=False)
    r = Render(m, Dream("blocks.4.2"), cfg, Start(init=torch.rand(1, 3, args.side, args.side)), device=device)
    tiles = layout(args.side, args.side, r.tile, r.overlap)
    canvas = torch.rand(1, 3, args.side, args.side).to(device)

    def bare(truncated: bool) -> float:
        sync()
        t = time.perf_counter()
        for i in range(0, len(tiles.windows), args.batch_size):
            ws = tiles.windows[i : i + args.batch_size]
            x = torch.cat([canvas[:, :, w.y0 : w.y1, w.x0 : w.x1] for w in ws]).requires_grad_(True)
            z = m.normalize(x)
            a = net.blocks[:5](net.bn1(net.conv_stem(z))) if truncated else net(z)
            (g,) = torch.autograd.grad(a.pow(2).mean(), x)
        sync()
        return time.perf_counter() - t

    step_times = []
    last = [0.0]

    def cb(p):
        sync()
        now = time.perf_counter()
        step_times.append(now - last[0])
        last[0] = now

    cnnvis_t, bare_t, full_t = [], [], []
    for _ in range(args.repeats + 1):  # the first round warms up
        bare_t.append(bare(True))
        full_t.append(bare(False))
        run = Render(m, Dream("blocks.4.2"), cfg, Start(init=canvas), device=device)
        sync()
        last[0] = time.perf_counter()
        step_times.clear()
        run.run(cb)
        cnnvis_t.append(step_times[1])  # the second step: the first includes set-up
    c, b, f = (statistics.median(v[1:]) for v in (cnnvis_t, bare_t, full_t))
    # Each round runs both back to back, so the per-round ratio cancels slow machine drift.
    ratios = [ci / bi for ci, bi in zip(cnnvis_t[1:], bare_t[1:])]
    where = f"{args.threads} threads" if device.type == "cpu" else str(device)
    print(
        f"canvas {args.side}x{args.side}, {len(tiles.windows)} tiles of {r.tile}px, batch {args.batch_size}, {where}, "
        f"median of {args.repeats}"
    )
    print(f"bare fwd+bwd to blocks.4.2 : {b:.3f} s")
    print(f"bare fwd+bwd, full network : {f:.3f} s")
    print(f"cnnvis dream step          : {c:.3f} s")
    print(
        f"overhead ratio (cnnvis / bare, same tiles): {c / b:.3f} of medians, "
        f"{statistics.median(ratios):.3f} median per round"
    )


if __name__ == "__main__":
    main()
