"""Catalogue objectives against lucent 0.1.8 (issue 11, "Measured").

Issue target, measured here: against lucent 0.1.8, on the same network, layers and units,

- channel, neuron, direction: the activation cnnvis reaches in 128 steps against lucent's in
  512, and the seconds each takes;
- diversity (batch of 4): the mean pairwise Gram cosine distance, with and without the term;
  each image keeps at least 0.8x the activation it reaches alone.

Both tools optimize the embedded EfficientNet-Lite0 (input RGB in [0, 1] normalized by mean 0.5,
std 0.5) at ``blocks.4`` (112 channels, a 14x14 map at 224 px). lucent runs its defaults as
bench/prefer.py sets them up (``param.image(224)``, ``standard_transforms``, Adam lr 0.05, our
normalization appended to its transforms, ``preprocess=False``); cnnvis runs
``cnnvis.recipes.recon.objective_render`` (the preferred-image defaults) with the catalogue
objectives:

=================  ===========================================  ===========================================
objective          cnnvis                                       lucent
=================  ===========================================  ===========================================
channel c          ``Channel(L, c)``                            ``objectives.channel(L, c)``
neuron c           ``Neuron(L, c)`` (centre, 7, 7)              ``objectives.neuron(L, c)`` (centre, 7, 7)
direction v        ``Direction(L, v)``: mean over positions     ``objectives.channel_weight(L, v)``: the
                   of dot(a, v)                                 same dot product (divided by C)
direction-neuron   ``DirectionNeuron(L, v)``: dot at the centre ``objectives.neuron_weight(L, v)``
direction-cos v    (none: cnnvis's direction is the dot)        ``objectives.direction(L, v)``: lucent's
                                                                own "direction" is the cosine similarity
diversity          ``MaskedUnits`` whole channel (the sum over  ``channel(L, c) - w * diversity(L)``
                   positions, what ``cnnvis prefer               (lucent's tutorial weight 1e2)
                   --whole-channel`` optimizes) ``+ w *
                   Diversity(L)``, w on the CLI's scale
=================  ===========================================  ===========================================

``v`` is a fixed seeded random unit vector of 112 values (``rand``) or the unit sum of two
channel one-hots (``5+42``). Every final image of both tools is scored the same way, at the
layer, for the 224x224 image in [0, 1], with no transforms: the channel's mean, the centre
unit, the mean over positions of dot(a, v) (the centre's for direction-neuron); direction rows
also give the mean cosine of a with v. Diversity: the mean over the 6 pairs of 1 - the cosine
of the images' Gram matrices at the layer (``cnnvis.objectives.batch.gram_cosines``), and each
image's channel activation with the term over the same image's (same seed) without it.

lucent is installed beside the venv as bench/prefer.py describes::

    pip install --no-deps --target /tmp/lucent_pkg torch-lucent decorator

Usage::

    python bench/catalogue.py --save-dir /tmp/catalogue        # ~28 min on 2 shared cores
    python bench/catalogue.py --no-lucent --only diversity --diversity-weights 30,100,300,1000,3000   # tuning
    python bench/catalogue.py --only diversity --lucent-diversity 100   # lucent's diversity too
    python bench/catalogue.py --no-lucent --only interpolate   # shared terms against none

Interpolation (cnnvis only: lucent has no shared parameterization): the 6 frames of
``--interpolate blocks.4:5:42 --alignment 1`` (frame i maximizes (1 - t) channel 5 + t channel
42), with the frames' Fourier images sharing low-resolution terms (lucid's ``SharedImage``,
the default) and without; reported: the mean |difference| of neighbouring frames on 0..255
(how smoothly they morph) and channel 5's activation on the first frame and 42's on the last
(what the ends reach).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import prefer as lucent_bench  # noqa: E402  (bench/ is a folder of scripts: the lucent shims live there)

KINDS = ("channel", "neuron", "direction", "diversity", "interpolate")


def _ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def _floats(text: str) -> list[float]:
    return [float(t) for t in text.split(",") if t.strip()]


def layer_acts(m, layer: str, images: torch.Tensor) -> torch.Tensor:
    """Activations (N, C, h, w) at ``layer`` for images (N, 3, H, W) in [0, 1], no transforms."""
    from cnnvis.models.capture import FeatureCapture

    with FeatureCapture(m.module, [layer], model_name=m.name) as cap, torch.no_grad():
        return cap(m.normalize(images.float().clamp(0, 1)))[layer]


def score(kind: str, a: torch.Tensor, arg) -> torch.Tensor:
    """Per image: what objective ``kind`` measures on activations ``a`` (N, C, h, w)."""
    h, w = a.shape[-2:]
    if kind == "channel":
        return a[:, arg].flatten(1).mean(1)
    if kind == "neuron":
        return a[:, arg, h // 2, w // 2]
    v = torch.as_tensor(arg, dtype=a.dtype).view(1, -1, 1, 1)
    dot = (a * v).sum(1)  # (N, h, w)
    if kind in ("direction", "direction-cos"):
        return dot.flatten(1).mean(1)
    if kind == "direction-neuron":
        return dot[:, h // 2, w // 2]
    raise ValueError(kind)


def cosine(kind: str, a: torch.Tensor, v) -> torch.Tensor:
    """Per image: the cosine of the activation vectors with ``v`` (mean over positions, or the centre)."""
    h, w = a.shape[-2:]
    if kind == "direction-neuron":
        a = a[:, :, h // 2 : h // 2 + 1, w // 2 : w // 2 + 1]
    v = torch.as_tensor(v, dtype=a.dtype).view(1, -1, 1, 1)
    return torch.nn.functional.cosine_similarity(a, v, dim=1).flatten(1).mean(1)


def mean_gram_distance(a: torch.Tensor) -> float:
    """Mean over pairs i < j of 1 - cos(Gram_i, Gram_j)."""
    from cnnvis.objectives.batch import gram_cosines

    sims = gram_cosines(a)
    iu = torch.triu_indices(len(a), len(a), 1)
    return float((1 - sims[iu[0], iu[1]]).mean())


def cnnvis_objective(kind: str, layer: str, arg):
    import cnnvis

    return {
        "channel": lambda: cnnvis.Channel(layer, arg),
        "neuron": lambda: cnnvis.Neuron(layer, arg),
        "direction": lambda: cnnvis.Direction(layer, arg),
        "direction-neuron": lambda: cnnvis.DirectionNeuron(layer, arg),
    }[kind]()


def lucent_objective(objectives, kind: str, layer: str, arg):
    name = layer.replace(".", "_")
    if kind == "channel":
        return objectives.channel(name, arg)
    if kind == "neuron":
        return objectives.neuron(name, arg)
    v = torch.as_tensor(arg, dtype=torch.float32)
    if kind == "direction":
        return objectives.channel_weight(name, v)
    if kind == "direction-neuron":
        return objectives.neuron_weight(name, v)
    if kind == "direction-cos":
        return objectives.direction(name, v)
    raise ValueError(kind)


def run_cnnvis(m, objective, steps: int, size: int, seed: int, batch: int = 1, **options) -> torch.Tensor:
    from cnnvis.recipes.recon import objective_render

    seeds = None if batch == 1 else [seed + i for i in range(batch)]
    r = objective_render(
        m, objective, size=(size, size), batch=batch, item_seeds=seeds, steps=steps, seed=seed, **options
    )
    return r.run().detach().float().cpu()


def run_lucent(lucent, m, objective, steps: int, size: int, seed: int, batch: int = 1) -> torch.Tensor:
    return torch.from_numpy(lucent_bench.render_lucent(lucent, m, objective, steps, size, seed, batch)).permute(
        0, 3, 1, 2
    )


def _save(save_dir: str | None, name: str, images: torch.Tensor) -> None:
    if not save_dir:
        return
    for i in range(images.shape[0]):
        suffix = f"_{i}" if images.shape[0] > 1 else ""
        lucent_bench._save(os.path.join(save_dir, f"{name}{suffix}.png"), images[i].permute(1, 2, 0).numpy())


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layer", default="blocks.4")
    ap.add_argument("--units", type=_ints, default=[5, 42, 97], help="channels for channel and neuron (comma list)")
    ap.add_argument("--steps-cnnvis", type=int, default=128)
    ap.add_argument("--steps-lucent", type=int, default=512)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--direction-seed", type=int, default=0, help="seed of the random unit direction")
    ap.add_argument(
        "--two-hot",
        type=_ints,
        default=[5, 42],
        help="the second direction: the unit sum of these channels' one-hots ('' for none)",
    )
    ap.add_argument(
        "--diversity-unit", type=int, default=5, help="the channel the diversity batch maximizes (whole channel)"
    )
    ap.add_argument("--batch", type=int, default=4, help="diversity batch")
    ap.add_argument(
        "--diversity-weights",
        type=_floats,
        default=[1000, 2000],
        help=(
            "cnnvis diversity weights to try, on the scale of `cnnvis prefer --diversity` "
            "(0 = without the term is always run)"
        ),
    )
    ap.add_argument(
        "--lucent-diversity",
        type=float,
        default=0.0,
        help=(
            "also run lucent's diversity at this weight (its tutorial's is 100), batch 4 with and without it; "
            "0 = skip (about 2 x 4 x 2.5 min on 2 cores)"
        ),
    )
    ap.add_argument("--only", default=",".join(KINDS), help=f"comma list of {', '.join(KINDS)}")
    lucent_bench.add_run_options(ap)
    return ap


@dataclass
class _Bench:
    """What every part of the benchmark shares: the parsed flags, the model and lucent (None with --no-lucent)."""

    args: argparse.Namespace
    m: object
    n_channels: int
    lucent: object = None
    objectives: object = None


def _print_header(args, shape) -> None:
    import kornia
    import timm

    from cnnvis.recipes.recon import PREFER_DEFAULTS

    print(
        f"machine: {platform.machine()} {platform.processor() or ''} cpus={os.cpu_count()}; torch {torch.__version__}, "
        f"timm {timm.__version__}, "
        f"kornia {kornia.__version__}; threads={torch.get_num_threads()}"
    )
    print(
        f"model efficientnet-lite0, layer {args.layer} {shape}, {args.size}x{args.size}, seed {args.seed}; "
        f"cnnvis {args.steps_cnnvis} steps (PREFER_DEFAULTS {PREFER_DEFAULTS}), lucent {args.steps_lucent} steps"
    )


def _directions(args, n_channels: int) -> list[tuple[str, np.ndarray]]:
    """(name, unit vector): the seeded random direction, and the two-hot one unless --two-hot ''."""
    rand = np.random.default_rng(args.direction_seed).standard_normal(n_channels).astype(np.float32)
    rand /= np.linalg.norm(rand)
    dirs = [(f"rand{args.direction_seed}", rand)]
    if args.two_hot:
        two = np.zeros(n_channels, np.float32)
        two[args.two_hot] = 1
        dirs.append(("+".join(map(str, args.two_hot)), two / np.linalg.norm(two)))
    return dirs


def _cases(args, only: set[str], dirs, with_lucent: bool) -> list[tuple[str, str, object]]:
    """(kind, label, arg) of every single-image objective selected by --only."""
    cases = []
    if "channel" in only:
        cases += [("channel", f"channel {c}", c) for c in args.units]
    if "neuron" in only:
        cases += [("neuron", f"neuron {c} (7,7)", c) for c in args.units]
    if "direction" in only:
        cases += [("direction", f"direction {n}", v) for n, v in dirs]
        cases += [("direction-neuron", f"direction-neuron {dirs[0][0]}", dirs[0][1])]
        if with_lucent:
            cases += [("direction-cos", f"direction {dirs[0][0]}, lucent's cosine objective", dirs[0][1])]
    return cases


def _measured(b: _Bench, kind: str, arg, img: torch.Tensor, sec: float) -> tuple[float, float | None, float]:
    """(activation, cosine for direction kinds else None, seconds) of a final image."""
    a = layer_acts(b.m, b.args.layer, img)
    return (
        float(score(kind, a, arg)[0]),
        float(cosine(kind, a, arg)[0]) if kind.startswith("direction") else None,
        sec,
    )


def _run_case(b: _Bench, kind: str, label: str, arg) -> dict:
    """Both tools on one objective: {tool: (value, cos or None, seconds)}; prints the row."""
    args, m = b.args, b.m
    row = {}
    tag = label.split(",")[0].replace(" ", "_").replace("(", "").replace(")", "").replace("+", "p")
    if kind != "direction-cos":
        img, sec = _timed(
            lambda: run_cnnvis(m, cnnvis_objective(kind, args.layer, arg), args.steps_cnnvis, args.size, args.seed)
        )
        row["cnnvis"] = _measured(b, kind, arg, img, sec)
        _save(args.save_dir, f"{tag}_cnnvis{args.steps_cnnvis}", img)
    if b.lucent:
        img, sec = _timed(
            lambda: run_lucent(
                b.lucent,
                m,
                lucent_objective(b.objectives, kind, args.layer, arg),
                args.steps_lucent,
                args.size,
                args.seed,
            )
        )
        row["lucent"] = _measured(b, kind, arg, img, sec)
        _save(args.save_dir, f"{tag}{'_cos' if kind == 'direction-cos' else ''}_lucent{args.steps_lucent}", img)
    print(
        f"{label:45s} "
        + "  ".join(f"{t} {v:8.3f}{'' if c is None else f' cos {c:.3f}'} ({s:5.1f}s)" for t, (v, c, s) in row.items()),
        flush=True,
    )
    return row


def _cell(x) -> str:
    if x is None:
        return "-"
    v, c, s = x
    return f"{v:.2f}{'' if c is None else f' [{c:.2f}]'} ({s:.1f} s)"


def _print_objective_table(args, rows, with_lucent: bool) -> None:
    print()
    print(
        "activation reached, final 224x224 image, no transforms (seconds); direction rows: "
        "dot with the unit vector, [mean cosine]"
    )
    print(
        f"| objective | cnnvis, {args.steps_cnnvis} steps | lucent, "
        f"{args.steps_lucent} steps | ratio activation cnnvis / lucent | ratio seconds |"
    )
    print("|---|---|---|---|---|")
    for label, kind, row in rows:
        cv, lu = row.get("cnnvis"), row.get("lucent")
        ratio = f"**{cv[0] / lu[0]:.2f}**" if cv and lu else "-"
        tratio = f"{cv[2] / lu[2]:.2f}" if cv and lu else "-"
        print(f"| {label} | {_cell(cv)} | {_cell(lu)} | {ratio} | {tratio} |")
    if not with_lucent:
        return
    rs = [row["cnnvis"][0] / row["lucent"][0] for _, _, row in rows if "cnnvis" in row and "lucent" in row]
    if rs:
        print(
            f"ratio cnnvis@{args.steps_cnnvis} / lucent@{args.steps_lucent}: min {min(rs):.2f}, "
            f"geometric mean {float(np.exp(np.mean(np.log(np.maximum(rs, 1e-9))))):.2f} "
            f"over {len(rs)} objectives; at least 1 on {sum(r >= 1 for r in rs)} of {len(rs)}"
        )


def _diversity_results(b: _Bench) -> list[tuple]:
    """(tool, weight, distance, per-image activation, seconds) of each diversity weight tried, printed as they come."""
    from cnnvis.objectives.batch import Diversity
    from cnnvis.objectives.inversion import MaskedUnits

    args, m = b.args, b.m
    c, n = args.diversity_unit, args.batch
    mask = np.zeros(b.n_channels, np.float32)
    mask[c] = 1
    base = MaskedUnits(args.layer, mask)  # the whole channel, summed over positions: `cnnvis prefer --whole-channel`
    print()
    print(f"diversity: batch {n}, channel {c} of {args.layer} (whole channel), seeds {args.seed}..{args.seed + n - 1}")
    results = []
    runs = [("cnnvis", w) for w in [0.0] + [w for w in args.diversity_weights if w > 0]]
    if b.lucent and args.lucent_diversity > 0:
        runs += [("lucent", w) for w in (0.0, args.lucent_diversity)]
    name = args.layer.replace(".", "_")
    for tool, w in runs:
        if tool == "cnnvis":
            obj = base if w == 0 else base + w * Diversity(args.layer)
            img, sec = _timed(lambda: run_cnnvis(m, obj, args.steps_cnnvis, args.size, args.seed, batch=n))
        else:
            channel = b.objectives.channel
            obj = channel(name, c) if w == 0 else channel(name, c) - w * b.objectives.diversity(name)
            img, sec = _timed(lambda: run_lucent(b.lucent, m, obj, args.steps_lucent, args.size, args.seed, batch=n))
        a = layer_acts(m, args.layer, img)
        results.append((tool, w, mean_gram_distance(a), score("channel", a, c), sec))
        _save(args.save_dir, f"diversity_ch{c}_{tool}_w{w:g}", img)
        print(
            f"{tool} w={w:g}: distance {results[-1][2]:.3f}, "
            f"activation {[round(float(x), 2) for x in results[-1][3]]} ({sec:.1f}s)",
            flush=True,
        )
    return results


def _print_diversity_table(args, results) -> None:
    print()
    print(
        "mean pairwise Gram cosine distance (1 - cos) at the layer over the batch; "
        "activation with the term / alone (same seed), per image"
    )
    print(
        "| tool | steps | diversity weight | mean Gram distance | activation per image | with / alone, "
        "per image | min with / alone | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|")
    chosen = None
    for tool, w, dist, act, sec in results:
        alone = next(r[3] for r in results if r[0] == tool and r[1] == 0)
        keep = act / alone
        steps = args.steps_cnnvis if tool == "cnnvis" else args.steps_lucent
        print(
            f"| {tool} | {steps} | {w:g} | {dist:.3f} | {', '.join(f'{float(x):.1f}' for x in act)} | "
            f"{', '.join(f'{float(x):.2f}' for x in keep)} | {float(keep.min()):.2f} | {sec:.1f} |"
        )
        if tool == "cnnvis" and w > 0 and float(keep.min()) >= 0.8 and (chosen is None or dist > chosen[1]):
            chosen = (w, dist, float(keep.min()))
    d0 = next(r[2] for r in results if r[0] == "cnnvis" and r[1] == 0)
    if chosen:
        print(
            f"cnnvis: the largest distance with every image >= 0.8x alone: weight {chosen[0]:g}, "
            f"distance {chosen[1]:.3f} "
            f"(without the term {d0:.3f}, {chosen[1] / max(d0, 1e-9):.1f}x), min with / alone {chosen[2]:.2f}"
        )
    else:
        print("cnnvis: no weight tried keeps every image >= 0.8x its activation alone")


def _run_interpolate(b: _Bench) -> None:
    """The interpolation frames with shared low-resolution terms and without: smoothness and the ends' activations."""
    from cnnvis.objectives.activation import Channel
    from cnnvis.objectives.base import Sum
    from cnnvis.objectives.batch import Alignment

    args, m = b.args, b.m
    a_ch, b_ch, n = args.two_hot[0], args.two_hot[1], 6
    terms = []
    for i in range(n):
        t = i / (n - 1)
        terms += [(1 - t, Channel(args.layer, a_ch).on(i)), (t, Channel(args.layer, b_ch).on(i))]
    obj = Sum(terms + [(1.0, Alignment(args.layer))])
    print()
    print(
        f"interpolation: {n} frames from channel {a_ch} to {b_ch} of {args.layer}, alignment 1, "
        f"{args.steps_cnnvis} steps"
    )
    print(
        "| frames | mean neighbour |difference| (0..255) | first frame: channel A | last frame: channel B | seconds |"
    )
    print("|---|---|---|---|---|")
    for shared in (True, False):
        img, sec = _timed(lambda: run_cnnvis(m, obj, args.steps_cnnvis, args.size, args.seed, batch=n, shared=shared))
        u8 = (img.clamp(0, 1) * 255).round()
        step = float((u8[1:] - u8[:-1]).abs().mean())
        acts = layer_acts(m, args.layer, img)
        _save(args.save_dir, f"interpolate_{'shared' if shared else 'own'}", img)
        print(
            f"| {'shared terms' if shared else 'each its own'} | {step:.1f} | "
            f"{float(score('channel', acts[:1], a_ch)[0]):.2f} | "
            f"{float(score('channel', acts[-1:], b_ch)[0]):.2f} | {sec:.0f} |",
            flush=True,
        )


def main(argv=None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    if only - set(KINDS):
        ap.error(f"--only takes {', '.join(KINDS)}")

    torch.set_num_threads(args.threads)
    import cnnvis
    from cnnvis.recipes.recon import layer_shape

    m = cnnvis.load_model("efficientnet-lite0")
    shape = layer_shape(m, args.layer, (args.size, args.size))
    b = _Bench(args, m, shape[0])
    if not args.no_lucent:
        b.lucent = lucent_bench._import_lucent(args.lucent_path)
        from lucent.optvis import objectives

        b.objectives = objectives
    if args.save_dir:
        os.makedirs(args.save_dir, exist_ok=True)
    _print_header(args, shape)

    cases = _cases(args, only, _directions(args, b.n_channels), bool(b.lucent))
    rows = [(label, kind, _run_case(b, kind, label, arg)) for kind, label, arg in cases]  # (label, kind, row)
    if rows:
        _print_objective_table(args, rows, bool(b.lucent))
    if "diversity" in only:
        _print_diversity_table(args, _diversity_results(b))
    if "interpolate" in only:
        _run_interpolate(b)
    return 0


if __name__ == "__main__":
    sys.exit(main())
