"""Dream speed and memory on transformers beside CNNs, and fixed tiles against timm's dynamic size.

For each model (random weights: the speed and memory do not depend on them) and canvas side,
one dream step on a noise canvas of that size, in a fresh process each:

- ``s/step``: wall seconds of one step (every tile forward and backward, blended; the model load,
  the layout probe and the first-call set-up excluded: the clock starts after one warm-up step);
- ``peak RSS``: the process's high-water resident memory, GB (torch, the model and everything);
- ``tiles``: tiles per step.

Transformers that take one input size (ViT, DeiT, Swin) are tiled at it; the CNNs at their input
size too (the default tile), so the tile counts match and the time per tile compares the
networks. ``--dynamic`` compares, on vit_tiny at 1024x1024, fixed 224 tiles with timm's
``dynamic_img_size`` (position embeddings interpolated to any grid) at larger tiles.

    python bench/transformers.py                      # the table (a few minutes at 1024, ~15 at 4096)
    python bench/transformers.py --sizes 1024 --repeat 3
    python bench/transformers.py --dynamic --repeat 3
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

MODELS = {
    "efficientnet-lite0": "blocks.4.2",
    "timm:vit_tiny_patch16_224": "blocks.6",
    "timm:deit_small_patch16_224": "blocks.6",
    "timm:swin_tiny_patch4_window7_224": "layers.2",
    "timm:convnext_tiny": "stages.2",
}


def _dynamic_vit():
    """vit_tiny built with timm's dynamic image size: any multiple of the patch."""
    import timm

    return timm.create_model("vit_tiny_patch16_224", dynamic_img_size=True)


def one_case(model_name: str, layer: str, side: int, tile: int | None, dynamic: bool) -> dict:
    """One warm-up step and one timed step of a dream at side x side, in this process."""
    import torch

    from cnnvis import Dream, Render, RenderConfig
    from cnnvis.canvas.start import Start
    from cnnvis.canvas.tiling import layout
    from cnnvis.models.registry import LoadedModel, load_model

    torch.manual_seed(0)
    if dynamic:
        module = _dynamic_vit().eval().requires_grad_(False)
        model = LoadedModel("vit_tiny dynamic", module, (0.5,) * 3, (0.5,) * 3, 224, 32)
    else:
        model = load_model(model_name, weights="random")
    cfg = RenderConfig(steps=2, seed=0, final_size=f"{side}x{side}", octaves=1, num_sizes=1, tile=tile)
    stamps = []
    render = Render(model, Dream(layer), cfg, Start(init=None), device="cpu")
    render.run(lambda p: stamps.append(time.perf_counter()))
    t = render.tile
    tiles = len(layout(side, side, t, render.overlap, (0, 0)).windows)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    return {"s_per_step": stamps[1] - stamps[0], "peak_gb": peak_gb, "tiles": tiles, "tile": t}


def run_case(model: str, layer: str, side: int, tile: int | None = None, dynamic: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--case", model, layer, str(side), str(tile or 0), str(int(dynamic))]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def table(sizes: list[int], repeat: int) -> None:
    print(f"{'model':<36} {'side':>5} {'tiles':>5} {'s/step':>8} {'peak RSS GB':>12}   (median of {repeat})")
    for model, layer in MODELS.items():
        peaks = {}
        for side in sizes:
            runs = [run_case(model, layer, side) for _ in range(repeat)]
            s = statistics.median(r["s_per_step"] for r in runs)
            peaks[side] = max(r["peak_gb"] for r in runs)
            print(f"{model:<36} {side:>5} {runs[0]['tiles']:>5} {s:>8.2f} {peaks[side]:>12.2f}", flush=True)
        if len(peaks) > 1:
            lo, hi = min(peaks), max(peaks)
            print(f"{'':<36} peak growth {lo} -> {hi}: {peaks[hi] - peaks[lo]:+.2f} GB", flush=True)


def dynamic(repeat: int, side: int = 1024) -> None:
    print(f"vit_tiny, dream step at {side}x{side}, median of {repeat} (one process per run)")
    base = None
    for label, tile, dyn in [
        ("fixed 224 tiles", None, False),
        ("dynamic, 448 tiles", 448, True),
        ("dynamic, one 1024 tile", side, True),
    ]:
        runs = [run_case("timm:vit_tiny_patch16_224", "blocks.6", side, tile, dyn) for _ in range(repeat)]
        s = statistics.median(r["s_per_step"] for r in runs)
        base = base or s
        peak = max(r["peak_gb"] for r in runs)
        print(
            f"{label:<24} tiles {runs[0]['tiles']:>3}  {s:7.2f} s/step  x{s / base:4.2f}  peak {peak:.2f} GB",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1024,4096")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--dynamic", action="store_true")
    ap.add_argument("--case", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        model, layer, side, tile, dyn = args.case
        print(json.dumps(one_case(model, layer, int(side), int(tile) or None, dyn == "1")))
    elif args.dynamic:
        dynamic(args.repeat)
    else:
        table([int(s) for s in args.sizes.split(",")], args.repeat)


if __name__ == "__main__":
    main()
