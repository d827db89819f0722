"""How close a dream step comes to the machine's peak: a roofline per model and compute setting.

    python bench/speed.py                                  # the roofline table (a few minutes)
    python bench/speed.py --compile                        # also torch.compile rows (minutes of compiling)
    python bench/speed.py --models efficientnet-lite0 --side 1024 --repeats 5 --batch-sizes 4 8 16
    python bench/speed.py --device cuda --compile        # a GPU's rows (bench/gpu.sh): fp16 too

For this machine and each dtype: the peak FLOP/s of a large matrix product (``--matmul`` side,
the best of ``--repeats``). For each model (efficientnet-lite0 pretrained; resnet50 and a ViT
with random weights, which cost the same), the FLOPs of one dream step on a ``--side`` square
noise canvas (``torch.utils.flop_counter``: every convolution and matrix product of every tile's
forward and backward), and for each compute setting (precision x channels-last [x folded BatchNorm] [x compile],
then tiles per pass) the median seconds of a step, its speed-up over float32 contiguous
measured in the same rounds, and the share of the dtype's peak it reaches.

Rounds interleave the settings (one step of each per round, after a warm-up step), so drift on
a shared machine falls on all of them alike. The targets of issue 23 (a 2048x2048 dream with
the CLI's defaults, prefer's 128 steps, memory at 4096) are measured by bench/speed_targets.py.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

MODELS = {
    "efficientnet-lite0": ("blocks.4.2", None),
    "resnet50": ("layer3", "random"),
    "timm:vit_tiny_patch16_224": ("blocks.6", "random"),
}


DEVICE = torch.device("cpu")


def sync() -> None:
    """Wait for the device's queued work (a GPU's kernels run asynchronously)."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def peak_flops(dtype: torch.dtype, side: int, repeats: int) -> float:
    """FLOP/s of the best of ``repeats`` (side x side) @ (side x side) products in ``dtype``."""
    a = torch.randn(side, side).to(DEVICE, dtype)
    b = torch.randn(side, side).to(DEVICE, dtype)
    a @ b  # warm-up: oneDNN or cuBLAS picks its kernel
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * side**3 / best


def _timed(fn) -> float:
    sync()
    t = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t


def precisions() -> tuple[str, ...]:
    """The dtypes measured on this device: fp16 only where it is native."""
    from cnnvis.models.compute import fast_fp16

    return ("fp32", "bf16", "fp16") if fast_fp16(DEVICE) else ("fp32", "bf16")


def settings(compile_rows: bool) -> list[dict]:
    """The compute settings measured, float32 contiguous with BatchNorm on its own first (the
    baseline, the path before issue 23); folded BatchNorm with channels-last, as the defaults run, with
    bf16's stride-2 depthwise convolutions in bf16 and then in fp32 (the default on a CPU)."""
    off = dict(compile=False, fold_batchnorm="off", fp32_strided_depthwise="off")
    rows = [dict(precision=p, channels_last=c, **off) for p in precisions() for c in ("off", "on")]
    folded = dict(channels_last="on", compile=False, fold_batchnorm="on")
    rows += [dict(precision="bf16", **folded, fp32_strided_depthwise="off")]
    rows += [dict(precision=p, **folded) for p in precisions()]
    if compile_rows:
        rows += [dict(precision=p, channels_last="on", compile=True, fold_batchnorm="on") for p in precisions()]
    return rows


def _render(model, layer: str, side: int, cfg_kw: dict, batch_size: int):
    from cnnvis import Dream, Render, RenderConfig
    from cnnvis.canvas.start import Start

    cfg = RenderConfig(final_size=f"{side}x{side}", steps=2, batch_size=batch_size, shift=False, **cfg_kw)
    init = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    return Render(model, Dream(layer), cfg, Start(init=init), device=DEVICE)


def step_seconds(model, layer: str, side: int, cfg_kw: dict, batch_size: int) -> float:
    """Seconds of the second of two dream steps (the first pays for first-call set-up)."""
    marks = []
    r = _render(model, layer, side, cfg_kw, batch_size)

    def mark(_progress) -> None:
        sync()
        marks.append(time.perf_counter())

    r.run(mark)
    return marks[-1] - marks[-2]


def step_flops(model, layer: str, side: int) -> float:
    """FLOPs of one dream step (two steps counted, halved)."""
    from torch.utils.flop_counter import FlopCounterMode

    r = _render(model, layer, side, dict(precision="fp32", channels_last="off", fold_batchnorm="off"), 4)
    with FlopCounterMode(display=False) as counter:
        r.run()
    return counter.get_total_flops() / 2


def measure_model(name: str, args, peaks: dict) -> list[str]:
    """The table rows of one model."""
    from cnnvis import load_model

    layer, weights = MODELS[name]
    model = load_model(name, weights, DEVICE)
    flops = step_flops(model, layer, args.side)
    cases = [(s, 4) for s in settings(args.compile)]
    times: dict[int, list[float]] = {i: [] for i in range(len(cases))}
    for kw, bs in cases:  # warm-up (and compile) outside the rounds
        step_seconds(model, layer, args.side, kw, bs)
    for _ in range(args.repeats):
        for i, (kw, bs) in enumerate(cases):
            times[i].append(step_seconds(model, layer, args.side, kw, bs))
    best = min(range(len(cases)), key=lambda i: statistics.median(times[i]))
    extra = [(cases[best][0], b) for b in args.batch_sizes if b != 4]
    for kw, bs in extra:
        step_seconds(model, layer, args.side, kw, bs)
        times[len(cases)] = [step_seconds(model, layer, args.side, kw, bs) for _ in range(args.repeats)]
        cases.append((kw, bs))
    base = statistics.median(times[0])
    rows = []
    for i, (kw, bs) in enumerate(cases):
        t = statistics.median(times[i])
        peak = peaks[kw["precision"]]
        share = flops / t / peak
        folded = ", folded" if kw["fold_batchnorm"] == "on" else ""
        compiled = ", compile" if kw["compile"] else ""
        islands = kw["precision"] != "fp32" and kw.get("fp32_strided_depthwise", "auto") != "off"
        strided = ", strided depthwise fp32" if islands else ""
        setting = f"{kw['precision']}, channels-last {kw['channels_last']}{folded}{strided}{compiled}"
        rows.append(
            f"| {name} | {setting} | {bs} | {t:.3f} | {base / t:.2f}x | {flops / t / 1e9:.1f} | {100 * share:.1f} % |"
        )
    rows.insert(0, f"| {name} ({layer}) | step: {flops / 1e9:.1f} GFLOP | | | | | |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--side", type=int, default=1024, help="canvas side of the dream step (pixels)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 8, 16], help="tiles per pass, best setting")
    ap.add_argument("--matmul", type=int, default=2048, help="side of the peak-FLOP/s matrix product")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compile", action="store_true", help="also measure torch.compile (slow to compile on CPU)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    args = ap.parse_args()
    global DEVICE
    from cnnvis.models.compute import DTYPES
    from cnnvis.pipeline.device import pick_device

    DEVICE = pick_device(args.device)
    torch.set_num_threads(args.threads)
    peaks = {p: peak_flops(DTYPES[p], args.matmul, args.repeats) for p in precisions()}
    where = torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else torch.backends.cpu.get_cpu_capability()
    print(f"{DEVICE.type}: {where}, threads {args.threads}, torch {torch.__version__}")
    print("peak (matrix product): " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peaks.items()))
    print(f"dream step on a {args.side}x{args.side} canvas, median of {args.repeats}")
    print("| model | setting | tiles/pass | s/step | speed-up | GFLOP/s | share of peak |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models:
        for row in measure_model(name, args, peaks):
            print(row, flush=True)


if __name__ == "__main__":
    main()
