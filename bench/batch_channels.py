"""Preferred images of N channels rendered as one batch against N separate runs (issue 10).

Usage:
    python bench/batch_channels.py                                   # blocks.4, sizes 1 4 8 16, 32 steps
    python bench/batch_channels.py --steps 128 --repeats 5 --device cuda

For each N of ``--sizes``, channels ``--first-channel`` .. ``--first-channel + N - 1`` of
``--layer`` get a whole-channel preferred image with the library's preferred-image defaults
(``cnnvis.defaults.PREFER_DEFAULTS``: Fourier image, Adam lr 0.1, jitter 2, zoom 3 %, rotation 3
degrees) at 224x224 on the embedded EfficientNet-Lite0, except ``--steps`` (default 32 instead
of 128, to fit a small CPU machine):

- batched: one ``prefer_render`` with the N channel masks (one Render of N images, their tiles
  going through the network together, ``--batch-size`` tiles per forward pass);
- separate: N ``prefer_render`` calls, one per channel, one after the other.

Both are timed whole (building the Render, its probes and the run), with time.perf_counter,
interleaved within each repeat so that drift on a shared machine hits both; the table gives the
median over ``--repeats`` rounds, the speed-up (separate / batched: the ratio of the medians and
the median of the per-round ratios), and the mean activation of each channel on its final image
(clipped to [0, 1], without transforms) averaged over the N channels, both ways. Batched and
separate images start from different noise (the batch draws N images from one generator), so
the activations are close, not equal. It prints figures and asserts nothing.

At 224 px with a 224 px tile each image is one tile, so ``--batch-size`` >= N puts the whole
batch in one forward pass; the default (``auto``) uses max(N, 4) for the batched run (the
separate runs have one tile, so theirs does not matter; they get the library default of 4).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layer", default="blocks.4")
    ap.add_argument("--steps", type=int, default=32, help="steps per image (the library default is 128)")
    ap.add_argument("--sizes", default="1,4,8,16", help="comma-separated batch sizes N")
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds per N; the median is reported")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N)")
    ap.add_argument("--batch-size", default="auto", help="tiles per forward pass for the batched run; auto = max(N, 4)")
    ap.add_argument("--first-channel", type=int, default=0)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--per-channel", action="store_true", help="also print every channel's activation")
    return ap


class _Bench:
    """The model and flags shared by the batched and the separate runs."""

    def __init__(self, args, m, device: torch.device, n_channels: int):
        self.args, self.m, self.device, self.n_channels = args, m, device, n_channels
        self.hw = (args.size, args.size)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def mask(self, c: int) -> np.ndarray:
        f = np.zeros(
            self.n_channels, np.float32
        )  # whole channel (as the CLI's _unit_feature_mask with --whole-channel)
        f[c] = 1
        return f

    def tiles_per_pass(self, n: int) -> int:
        return max(n, 4) if self.args.batch_size == "auto" else int(self.args.batch_size)

    def activations(self, canvas: torch.Tensor, channels: list[int]) -> list[float]:
        """Mean activation of channel channels[i] on image i, clipped to [0, 1], no transforms."""
        from cnnvis.models.capture import FeatureCapture

        m, layer = self.m, self.args.layer
        x = canvas.detach().to(self.device).clamp(0, 1)
        with FeatureCapture(m.module, [layer], model_name=m.name) as cap, torch.no_grad():
            a = cap(m.normalize(x))[layer]
        return [float(a[i, c].mean()) for i, c in enumerate(channels)]

    def batched(self, channels: list[int]) -> tuple[float, list[float]]:
        from cnnvis.recipes.recon import prefer_render

        self.sync()
        t = time.perf_counter()
        r = prefer_render(
            self.m,
            self.args.layer,
            [self.mask(c) for c in channels] if len(channels) > 1 else self.mask(channels[0]),
            size=self.hw,
            device=self.device,
            steps=self.args.steps,
            batch_size=self.tiles_per_pass(len(channels)),
        )
        out = r.run()
        self.sync()
        dt = time.perf_counter() - t
        return dt, self.activations(out, channels)

    def separate(self, channels: list[int]) -> tuple[float, list[float]]:
        from cnnvis.recipes.recon import prefer_render

        self.sync()
        t = time.perf_counter()
        outs = []
        for c in channels:
            r = prefer_render(
                self.m, self.args.layer, self.mask(c), size=self.hw, device=self.device, steps=self.args.steps
            )
            outs.append(r.run())
        self.sync()
        dt = time.perf_counter() - t
        return dt, self.activations(torch.cat(outs), channels)

    def warm_up(self) -> None:
        """One short batched and one short separate render (allocator, kernels, first-call costs)."""
        from cnnvis.recipes.recon import prefer_render

        m, layer, hw, device = self.m, self.args.layer, self.hw, self.device
        w = [self.args.first_channel, self.args.first_channel + 1]
        prefer_render(m, layer, [self.mask(c) for c in w], size=hw, device=device, steps=2, batch_size=2).run()
        prefer_render(m, layer, self.mask(w[0]), size=hw, device=device, steps=2).run()


def _print_header(args, device: torch.device, n_channels: int) -> None:
    import timm

    where = (
        f"{torch.get_num_threads()} threads"
        if device.type == "cpu"
        else (torch.cuda.get_device_name(device) if device.type == "cuda" else str(device))
    )
    print(
        f"machine: {platform.machine()} cpus={os.cpu_count()}; torch {torch.__version__}, timm {timm.__version__}; "
        f"{where}"
    )
    print(
        f"efficientnet-lite0 {args.layer} ({n_channels} channels), whole-channel preferred images, "
        f"PREFER_DEFAULTS with steps={args.steps}, "
        f"{args.size}x{args.size}, median of {args.repeats}"
    )


def _measure(bench: _Bench, n: int) -> None:
    """``--repeats`` interleaved rounds of batched and separate runs of N channels; prints the table row."""
    args = bench.args
    channels = list(range(args.first_channel, args.first_channel + n))
    tb, ts, ab, as_ = [], [], [], []
    for _ in range(args.repeats):
        dt, acts = bench.batched(channels)
        tb.append(dt)
        ab.append(acts)
        dt, acts = bench.separate(channels)
        ts.append(dt)
        as_.append(acts)
    b, s = statistics.median(tb), statistics.median(ts)
    per_round = statistics.median(si / bi for si, bi in zip(ts, tb))
    # the activations of the last round (renders are seeded: every round gives the same images)
    mb, ms = float(np.mean(ab[-1])), float(np.mean(as_[-1]))
    print(
        f"{n:>3} {bench.tiles_per_pass(n):>10} {b:>10.2f} {s:>11.2f} {s / b:>8.2f}x {per_round:>9.2f}x {mb:>12.2f} "
        f"{ms:>13.2f}",
        flush=True,
    )
    if args.per_channel:
        for c, x, y in zip(channels, ab[-1], as_[-1]):
            print(f"      channel {c:>3}: batched {x:7.2f}  separate {y:7.2f}")


def main() -> None:
    args = _parser().parse_args()
    torch.set_num_threads(args.threads)

    from cnnvis import load_model
    from cnnvis.recipes.recon import layer_shape

    device = torch.device(args.device)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    m = load_model("efficientnet-lite0").to(device)
    n_channels = layer_shape(m, args.layer, (args.size, args.size))[0]
    if args.first_channel + max(sizes) > n_channels:
        raise SystemExit(
            f"layer {args.layer} has {n_channels} channels; "
            f"channels {args.first_channel}..{args.first_channel + max(sizes) - 1} do not fit"
        )
    bench = _Bench(args, m, device, n_channels)
    _print_header(args, device, n_channels)
    bench.warm_up()

    print(
        f"{'N':>3} {'tiles/pass':>10} {'batched s':>10} {'separate s':>11} {'speed-up':>9} {'per round':>10} "
        f"{'act batched':>12} {'act separate':>13}",
        flush=True,
    )
    for n in sizes:
        _measure(bench, n)


if __name__ == "__main__":
    main()
