"""Atlas throughput: units per minute in-process, on Ray with 1 worker and with 2 workers, and
against the batch size; and how much a unit's image changes across batch sizes and thread counts.

    python bench/atlas.py --units 16 --steps 16 --repeats 1
    python bench/atlas.py --units 64 --steps 128 --batch 8 --parts throughput   # the issue's figure

Prints figures (no assertion). Each configuration renders the same units of --layer (whole
channels, the preferred-image defaults, 224 px) from the same per-unit seeds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

import cnnvis
from cnnvis.recipes.atlas import UnitWorker
from cnnvis.recipes.atlas_plan import LayerPlan
from cnnvis.recipes.atlas_ray import RaySession


class _Run:  # what RaySession.render reads of an atlas run
    def __init__(self, units, size, steps, batch):
        self.model_name, self.weights, self.device, self.kind, self.size, self.seed = (
            "efficientnet-lite0",
            None,
            "cpu",
            "channel",
            size,
            0,
        )
        self.options, self.prior, self.units, self.batch = {"steps": steps, "batch_size": batch}, None, units, batch


def _work(layer: str, units: list[int], batch: int) -> list:
    lp = LayerPlan(layer, layer, 0, units)
    return [(lp, units[i : i + batch]) for i in range(0, len(units), batch)]


def in_process(model, layer, units, steps, batch, threads) -> tuple[float, np.ndarray]:
    torch.set_num_threads(threads)
    worker = UnitWorker(model, "cpu")
    worker.render(
        layer, units[:batch], "channel", (224, 224), 0, {"steps": 1, "batch_size": batch}
    )  # warm, as Ray's workers are
    t0 = time.perf_counter()
    images = []
    for _, chunk in _work(layer, units, batch):
        images.append(
            worker.render(layer, chunk, "channel", (224, 224), 0, {"steps": steps, "batch_size": batch})["images"]
        )
    return time.perf_counter() - t0, np.concatenate(images)


def on_ray(layer, units, steps, batch, workers, threads) -> tuple[float, float]:
    """(seconds for the units, seconds including the runtime's start and the workers' model loads)."""
    t0 = time.perf_counter()
    with RaySession("local", workers, threads) as session:
        got = []
        t1 = None

        def on_result(_lp, result):
            got.append(result)

        # warm: one 1-step batch per worker loads the model (once per session) before the clock starts
        session.render(
            _Run(units, (224, 224), 1, batch),
            _work(layer, units[: workers * batch], batch),
            lambda *_: None,
            lambda: False,
        )
        t1 = time.perf_counter()
        session.render(_Run(units, (224, 224), steps, batch), _work(layer, units, batch), on_result, lambda: False)
        t2 = time.perf_counter()
    return t2 - t1, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layer", default="blocks.4")
    ap.add_argument("--units", type=int, default=16)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--batches", default="1,4,8,16", help="batch sizes for the batch-size sweep")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument(
        "--parts",
        default="throughput,sweep,threads",
        help="which parts to run: throughput (in-process against Ray), sweep (batch sizes), threads (1 against all)",
    )
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    cores = os.cpu_count()
    units = list(range(args.units))
    model = cnnvis.load_model("efficientnet-lite0")
    print(
        f"# {args.units} units of {args.layer}, {args.steps} steps, 224 px, batch {args.batch}; {cores} cores, "
        f"torch {torch.__version__}"
    )
    if "throughput" in parts:
        throughput(model, args, units, cores)
    if "sweep" in parts:
        sweep(model, args, units, cores)
    if "threads" in parts:
        _, one_thread = in_process(model, args.layer, units, args.steps, args.batch, 1)
        _, all_threads = in_process(model, args.layer, units, args.steps, args.batch, cores)
        d = np.abs(one_thread.astype(float) - all_threads.astype(float))
        print(f"threads 1 vs {cores} (batch {args.batch}): max |diff| {d.max():.0f}/255, mean {d.mean():.3f}/255")


def throughput(model, args, units, cores) -> None:
    rows = {}
    for name, fn in [
        ("in-process, 1 thread", lambda: (in_process(model, args.layer, units, args.steps, args.batch, 1)[0], None)),
        (
            f"in-process, {cores} threads",
            lambda: (in_process(model, args.layer, units, args.steps, args.batch, cores)[0], None),
        ),
        ("ray --workers 1, 1 thread", lambda: on_ray(args.layer, units, args.steps, args.batch, 1, 1)),
        ("ray --workers 2, 1 thread each", lambda: on_ray(args.layer, units, args.steps, args.batch, 2, 1)),
    ]:
        runs = [fn() for _ in range(args.repeats)]
        secs = statistics.median(r[0] for r in runs)
        rows[name] = secs
        whole = (
            f"  (whole session with the runtime's start and model loads: {statistics.median(r[1] for r in runs):.1f} s)"
            if runs[0][1]
            else ""
        )
        print(f"{name:34s} {secs:8.1f} s  {args.units / secs * 60:7.2f} units/min{whole}", flush=True)
    base, one, two = (
        rows["in-process, 1 thread"],
        rows["ray --workers 1, 1 thread"],
        rows["ray --workers 2, 1 thread each"],
    )
    print(
        f"ray 1 worker / in-process (1 thread): {one / base:.3f}x the time;  2 workers / 1 worker: "
        f"{one / two:.2f}x the units per minute"
    )


def sweep(model, args, units, cores) -> None:
    print("# batch size against units per minute (in-process, all threads), and the pixel difference to batch 1")
    torch.set_num_threads(cores)
    ref = None
    for b in [int(v) for v in args.batches.split(",")]:
        secs, imgs = in_process(model, args.layer, units, args.steps, b, cores)
        if ref is None:
            ref = imgs.astype(float)
        d = np.abs(imgs.astype(float) - ref)
        corr = min(np.corrcoef(imgs[i].ravel().astype(float), ref[i].ravel())[0, 1] for i in range(len(units)))
        print(
            f"batch {b:3d}: {secs:8.1f} s  {args.units / secs * 60:7.2f} units/min;  vs batch 1: "
            f"max |diff| {d.max():.0f}/255, mean {d.mean():.3f}/255, min correlation {corr:.4f}"
        )


if __name__ == "__main__":
    main()
