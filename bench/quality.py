"""The quality scorecard (issue 21): class visualizations by cnnvis and by the peers, scored the same way.

Every method renders the logit of an ImageNet class of the embedded EfficientNet-Lite0 with the
same number of steps, from its own defaults:

- ``cnnvis-fft``: ``cnnvis prefer --layer classifier --channel K`` (the decorrelated Fourier image);
- ``cnnvis-maco``: the same with ``--param maco``;
- ``horama-maco`` and ``horama-fourier``: horama 0.3's ``maco`` and ``fourier`` (6 random crops a
  step on a 512 px canvas; its spectrum download is unreachable offline, so it gets cnnvis's
  shipped spectrum, written where horama looks for its own);
- ``lucent``: lucent's ``render_vis`` with its Fourier image and standard transforms (as
  bench/prefer.py runs it);
- ``torch-dreams``: its ``Dreamer.render`` with its defaults and our normalization;
- ``faccent-fourier`` and ``faccent-phase``: faccent 1.0's ``render_vis`` with its Fourier image
  and with its magnitude-constrained ``fourier_phase`` (its MACO), each with its own standard
  transforms (16 box crops a step on its 512 px canvas), Adam at its lr 0.05.

Each image is scored with :mod:`cnnvis.recipes.quality`, resized to each network's input with no
transforms: top-1 / top-5 of **Lite1 and Lite2** (networks that did not make it: MACO's
transferability) and of Lite0 itself, the logit reached on Lite0, the spectral slope (photos: about
-1; the validation photos' mean is printed), the share of energy above half Nyquist, and seconds.

The classes are drawn once with a fixed seed and split into a tuning half and a validation half;
choices are made on the tuning half only and the table reports both.

Peers are not dependencies of cnnvis. Install them beside the venv without touching it::

    pip install --no-deps --target /tmp/peers horama faccent torch-dreams torch-lucent einops decorator

Usage::

    python bench/quality.py --peers /tmp/peers --steps 128 --save-dir /tmp/quality
    python bench/quality.py --methods cnnvis-fft,cnnvis-maco --set tune   # cnnvis alone, tuning classes
    python bench/quality.py --methods cnnvis-maco --set tune --option lr=0.3 --option transform_scale=0.2
    python bench/quality.py --methods cnnvis-fft --robust off   # class visualizations as before --robust
    python bench/quality.py --methods cnnvis-fft,lucent,torch-dreams --fresh 30 --set fresh   # 30 unseen classes
    python bench/quality.py --methods cnnvis-fft,lucent --fresh 90 --fresh-skip 60 --set fresh   # 90 more
    python bench/quality.py --units          # channels of blocks.4 and blocks.5: Fourier image against MACO
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

CLASS_SEED, N_CLASSES = 2026, 6
METHODS = (
    "cnnvis-fft",
    "cnnvis-maco",
    "horama-maco",
    "horama-fourier",
    "lucent",
    "torch-dreams",
    "faccent-fourier",
    "faccent-phase",
)
HORAMA_SIZE = 512


def classes(n: int = N_CLASSES) -> dict[str, list[int]]:
    """The tuning and validation classes: drawn once with a fixed seed, split in halves."""
    drawn = [int(c) for c in np.random.default_rng(CLASS_SEED).choice(1000, n, replace=False)]
    return {"tune": drawn[::2], "validate": drawn[1::2]}


def fresh_classes(n: int, skip: int = 0) -> dict[str, list[int]]:
    """``2 n`` classes that no earlier run drew (neither the 6- nor the 20-class draw), with their own
    seed: ``n`` validation classes (the first drawn) and ``n`` tuning classes (the next), after the
    first ``skip`` of the draw (the classes that earlier ``--fresh`` runs used: ``--fresh 30`` used 60).
    Issue 21's 10 validation classes are one class per 0.1 of top-1: too few to tell lucent and cnnvis
    apart."""
    used = set(classes(6)["tune"] + classes(6)["validate"] + classes(20)["tune"] + classes(20)["validate"])
    order = [int(c) for c in np.random.default_rng(CLASS_SEED + 1).permutation(1000) if int(c) not in used]
    order = order[skip:]
    return {"fresh": order[:n], "fresh-tune": order[n : 2 * n]}


def render_cnnvis(model, k: int, steps: int, seed: int, param: str, options: dict, robust: str = "auto") -> np.ndarray:
    from cnnvis.recipes.prefer import PreferOptions, prefer_render

    opts = PreferOptions(layer="classifier", channel=[k], robust=robust)
    r = prefer_render(opts, model, "cpu", None, {"steps": steps, "seed": seed, "param": param, **options})
    return r.run()[0].clamp(0, 1).permute(1, 2, 0).numpy()


def _logit(model, k: int):
    def objective(images: torch.Tensor) -> torch.Tensor:
        return model.module(images)[:, k].mean()

    return objective


def render_horama(model, k: int, steps: int, seed: int, kind: str, workdir: str) -> np.ndarray:
    import horama

    from cnnvis.params.maco import read_spectrum

    torch.manual_seed(seed)
    os.makedirs(workdir, exist_ok=True)
    cwd = os.getcwd()
    os.chdir(workdir)  # horama reads its spectrum from the working directory
    try:
        np.save("spectrum_decorrelated.npy", read_spectrum(None).numpy())
        lo, hi = (
            [(0 - m) / s for m, s in zip(model.mean, model.std)][0],
            [(1 - m) / s for m, s in zip(model.mean, model.std)][0],
        )
        fn = horama.maco if kind == "maco" else horama.fourier
        img, _ = fn(_logit(model, k), total_steps=steps, image_size=HORAMA_SIZE, values_range=(lo, hi), device="cpu")
    finally:
        os.chdir(cwd)
    x = img.detach().permute(1, 2, 0).numpy()
    return np.clip((x - lo) / (hi - lo), 0, 1)


def render_lucent_class(model, k: int, steps: int, seed: int, lucent_path: str) -> np.ndarray:
    from prefer import _import_lucent, render_lucent

    lucent = _import_lucent(lucent_path)
    return render_lucent(lucent, model, f"classifier:{k}", steps, 224, seed)[0]


def render_torch_dreams(model, k: int, steps: int, seed: int) -> np.ndarray:
    import copy

    import torchvision.transforms as T
    from torch_dreams import Dreamer

    torch.manual_seed(seed)
    net = copy.deepcopy(model.module)
    dreamer = Dreamer(net, device="cpu", quiet=True)
    dreamer.set_custom_normalization(T.Normalize(mean=list(model.mean), std=list(model.std)))
    param = dreamer.render(
        layers=[net.classifier], width=224, height=224, iters=steps, custom_func=lambda outs: -outs[0][:, k].mean()
    )
    return np.asarray(param.to_hwc_tensor(), np.float32)


def render_faccent(model, k: int, steps: int, seed: int, kind: str) -> np.ndarray:
    """faccent's ``render_vis`` of logit ``k``; the network gets ImageNet-normalized input from
    faccent's [0, 1] image (faccent's own range normalization is one scalar range)."""
    import contextlib
    import io

    import torchvision.transforms as T
    from faccent import param, render

    torch.manual_seed(seed)
    net = torch.nn.Sequential(T.Normalize(mean=list(model.mean), std=list(model.std)), model.module).eval()
    make = param.fourier_phase if kind == "phase" else param.fourier
    with contextlib.redirect_stdout(io.StringIO()):  # faccent prints its choices
        parameterizer = make(device="cpu", seed=seed) if kind == "phase" else make(device="cpu")
        imgs, _, _, _ = render.render_vis(
            net,
            lambda hook: -hook("1_classifier")[..., k].mean(),  # (transforms, N, classes)
            parameterizer=parameterizer,
            out_thresholds=[steps - 1],
            inline_thresholds=[],
            progress=False,
            model_input_size=(model.input_size, model.input_size),
            model_input_range=(0, 1),
            hook_layers=["1_classifier"],
        )
    return imgs[-1][0].permute(1, 2, 0).clamp(0, 1).numpy()


def render(method: str, model, k: int, args) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    if method.startswith("cnnvis-"):
        img = render_cnnvis(model, k, args.steps, args.seed, method.split("-")[1], args.option, args.robust)
    elif method.startswith("horama-"):
        img = render_horama(
            model, k, args.steps, args.seed, method.split("-")[1], os.path.join(args.save_dir, "horama")
        )
    elif method.startswith("faccent-"):
        img = render_faccent(model, k, args.steps, args.seed, method.split("-")[1])
    elif method == "lucent":
        img = render_lucent_class(model, k, args.steps, args.seed, args.peers)
    else:
        img = render_torch_dreams(model, k, args.steps, args.seed)
    return np.ascontiguousarray(img, np.float32), time.perf_counter() - t0


def score(img: np.ndarray, k: int, scorers: dict) -> dict:
    from cnnvis.recipes.quality import class_scores, clipped_fraction, high_frequency_energy, spectral_slope

    row = {"slope": spectral_slope(img), "hf": high_frequency_energy(img), "clip": clipped_fraction(img)}
    for name, m in scorers.items():
        s = class_scores(m, [img], k)[0]
        row[name] = (s.hit1, s.hit5)
    lite0 = scorers["efficientnet-lite0"]
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    with torch.no_grad():
        row["logit"] = float(lite0.module(lite0.normalize(torch.nn.functional.interpolate(x, size=224)))[0, k])
    return row


def natural_slope() -> tuple[float, float]:
    """Mean spectral slope of the validation and tuning photos at 224 px (bench/photos.py)."""
    from photos import TUNING, VALIDATION, photo

    from cnnvis.recipes.quality import spectral_slope

    return tuple(statistics.mean(spectral_slope(photo(n, 224)) for n in names) for names in (VALIDATION, TUNING))


def summarize(method: str, rows: list[dict]) -> str:
    other = [r[m] for r in rows for m in ("efficientnet-lite1", "efficientnet-lite2") if m in r]
    top1 = statistics.mean(h[0] for h in other) if other else float("nan")
    top5 = statistics.mean(h[1] for h in other) if other else float("nan")
    own = statistics.mean(r["efficientnet-lite0"][0] for r in rows)
    return (
        f"{method:<15} {top1:6.2f} {top5:6.2f} {own:7.2f} {statistics.mean(r['logit'] for r in rows):7.2f} "
        f"{statistics.mean(r['slope'] for r in rows):7.2f} {statistics.mean(r['hf'] for r in rows):6.3f} "
        f"{statistics.mean(r['seconds'] for r in rows):7.1f} {statistics.mean(r['clip'] for r in rows):6.3f}"
    )


def transfer_hits(rows: list[dict]) -> list[int]:
    """Per class: how many of Lite1 and Lite2 put the class first (0, 1 or 2)."""
    return [sum(r[m][0] for m in ("efficientnet-lite1", "efficientnet-lite2") if m in r) for r in rows]


def paired_difference(ours: list[dict], theirs: list[dict]) -> str:
    """Top-1 of ``ours`` minus ``theirs``, paired by class, with its standard error over classes (the
    classes are the sample: a class both transfer or both miss adds nothing to the difference)."""
    diff = [(a - b) / 2 for a, b in zip(transfer_hits(ours), transfer_hits(theirs))]
    se = statistics.stdev(diff) / len(diff) ** 0.5 if len(diff) > 1 else float("nan")
    worse, better = sum(d < 0 for d in diff), sum(d > 0 for d in diff)
    return f"{statistics.mean(diff):+.3f} ± {se:.3f} ({worse} classes worse, {better} better)"


UNIT_LAYERS = {"blocks.4": 112, "blocks.5": 192}  # layer -> channels (Lite0)
UNITS_PER_LAYER = 4


def unit_table(model, args) -> None:
    """Channel visualizations of blocks.4 and blocks.5, the Fourier image against MACO: the
    channel's mean activation (no transforms) and the spectral slope, per unit."""
    from prefer import channel_activation

    from cnnvis.recipes.prefer import PreferOptions, prefer_render
    from cnnvis.recipes.quality import spectral_slope

    rng = np.random.default_rng(CLASS_SEED)
    head = f"{'fft act':>8} {'maco act':>9} {'fft slope':>10} {'maco slope':>11}"
    print(f"\nunit        {head}   ({args.steps} steps, whole channel)")
    for layer, n in UNIT_LAYERS.items():
        for c in sorted(int(u) for u in rng.choice(n, UNITS_PER_LAYER, replace=False)):
            cells = []
            for param in ("fft", "maco"):
                opts = PreferOptions(layer=layer, channel=[c], whole_channel=True)
                r = prefer_render(opts, model, "cpu", None, {"steps": args.steps, "seed": args.seed, "param": param})
                img = r.run()[0].clamp(0, 1).permute(1, 2, 0).numpy()
                cells.append((channel_activation(model, layer, c, img), spectral_slope(img)))
            (fa, fs), (ma, ms) = cells
            print(f"{layer}:{c:<4} {fa:8.2f} {ma:9.2f} {fs:10.2f} {ms:11.2f}", flush=True)


def class_sets(args, ap: argparse.ArgumentParser) -> dict[str, list[int]]:
    """The classes of the sets ``--set`` names: of the fresh draw with ``--fresh N``, else of the first draws."""
    if args.fresh:
        drawn = fresh_classes(args.fresh, args.fresh_skip)
        sets = {k: v for k, v in drawn.items() if args.set in (k, "both")}
        if not sets:
            ap.error("--fresh N takes --set fresh, fresh-tune or both")
        return sets
    if args.set.startswith("fresh"):
        ap.error(f"--set {args.set} needs --fresh N")
    drawn = classes(args.n_classes)
    return drawn if args.set == "both" else {args.set: drawn[args.set]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", default="/tmp/peers")
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--set", choices=("tune", "validate", "both", "fresh", "fresh-tune"), default="both")
    ap.add_argument("--save-dir", default="/tmp/quality")
    ap.add_argument(
        "--n-classes",
        type=int,
        default=N_CLASSES,
        help="classes drawn (half tuning, half validation); 6: the first run",
    )
    ap.add_argument(
        "--fresh", type=int, default=0, help="N fresh classes (no earlier run drew them): --set fresh or fresh-tune"
    )
    ap.add_argument(
        "--fresh-skip", type=int, default=0, help="skip the first K of the fresh draw (earlier --fresh runs' classes)"
    )
    ap.add_argument("--units", action="store_true", help="the per-unit table (blocks.4, blocks.5) instead")
    ap.add_argument("--option", action="append", default=[], help="KEY=JSON: a render setting of the cnnvis methods")
    ap.add_argument("--robust", default="auto", choices=["auto", "on", "off"], help="prefer --robust")
    args = ap.parse_args()
    args.option = {k: json.loads(v) for k, v in (o.split("=", 1) for o in args.option)}
    sets = None if args.units else class_sets(args, ap)  # before anything loads
    sys.path.insert(0, args.peers)
    import imageio.v3 as iio

    from cnnvis.models.registry import load_model
    from cnnvis.recipes.quality import available_scorers

    torch.set_num_threads(2)
    model = load_model("efficientnet-lite0")
    scorers = {n: load_model(n) for n in available_scorers()}
    os.makedirs(args.save_dir, exist_ok=True)
    if args.units:
        unit_table(model, args)
        return
    val, tune = natural_slope()
    print(f"classes {sets}; {args.steps} steps; natural photos' slope: validation {val:.2f}, tuning {tune:.2f}")
    methods = args.methods.split(",")
    for name, ks in sets.items():
        rows: dict[str, list[dict]] = {m: [] for m in methods}
        for k in ks:  # class by class, every method in turn: a drift of the machine's speed hits them alike
            for method in methods:
                img, seconds = render(method, model, k, args)
                iio.imwrite(os.path.join(args.save_dir, f"{method}_{k}.png"), (img * 255).round().astype(np.uint8))
                rows[method].append({**score(img, k, scorers), "seconds": seconds})
        head = "method        top1   top5  lite0@1   logit   slope     HF  seconds   clip"
        print(f"\n[{name}] {head}   (top-1/5: Lite1+Lite2)")
        for method in methods:
            print(summarize(method, rows[method]), flush=True)
        for ours in (m for m in methods if m.startswith("cnnvis-")):
            for peer in (m for m in methods if not m.startswith("cnnvis-")):
                print(f"top-1 {ours} - {peer}, paired by class: {paired_difference(rows[ours], rows[peer])}")
        with open(os.path.join(args.save_dir, f"scores_{name}.json"), "w") as f:
            json.dump({"classes": ks, "rows": rows}, f)  # per class, for paired comparisons


if __name__ == "__main__":
    main()
