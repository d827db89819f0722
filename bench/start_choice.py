"""Which of N inversion starts to keep, at the network's last layers (issue 25).

``invert`` renders N starts of a conv_head inversion together (``--starts``) and keeps the one whose
features match best. At conv_head a lower feature error does not mean a closer layout (bench/RESULTS.md,
"conv_head: the seed decides as much as the photo"), so this script renders every start and scores
rules that choose one without the photo's pixels:

- ``feature``: the lowest feature error at the last evaluation (the default);
- ``consensus``: the medoid of the starts: the start whose coarse layout (luminance at 28 px) agrees
  best, by correlation, with the other starts' (independent starts that agree are likelier right);
- ``mean``: the pixel mean of the starts (not one start's picture: where the starts disagree it blurs);
- and, for reference, ``oracle`` (the start closest to the photo, which needs the photo) and the mean of
  the starts' correlations (a start at random).

The first 3 of the N starts are scored as a 3-start run too: a start's trajectory does not depend on the
others in its batch (tests/pipeline/test_batch.py; chelsea's first 3 of 5 starts and a 3-start run gave
0.52, 0.42, 0.48 both).

    python bench/start_choice.py --sets tuning --starts 5
    python bench/start_choice.py --sets validation --starts 5 --json /tmp/starts.json
    python bench/start_choice.py --sets tuning validation --two-step --starts 3
    python bench/start_choice.py --sets tuning --starts 3 --anchor-weights 0,100,1000
    python bench/start_choice.py --sets tuning tuning-opencv --starts 3 --anchor colour --anchor-weights 0,1000,10000
    python bench/start_choice.py --sets tuning tuning-opencv --starts 3 --mean-refine 50
    python bench/start_choice.py --sets tuning tuning-opencv --starts 3 --polarity 50

``--anchor-weights W1,W2,...`` refines the same generator draw with an L2 pull of its 28 px colours toward the
draw's, at each weight (0: the two-step refinement), to see whether the draw's contrast sign survives;
``--anchor colour`` pulls only the canvas's colour mean and covariance toward the draw's (no place held).

``--mean-refine R`` runs the starts for all but R of the steps and refines the pixel mean of three of them for the
last R (one picture from their consensus, in the same iterations).

``--polarity R`` scores the kept start's contrast-reversed twin too (its luminance mirrored about its mean, the
colour differences kept: :func:`reversed_contrast`), because at conv_head the starts that miss hold the photo's
layout with its contrast reversed. A twin straight from the mirror is no optimum (its feature error is 6-12x the
start's), so both the start and its twin are refined in pixels for R more steps: ``flip@3`` keeps whichever of the
two then matches the features better; ``flip-oracle@3`` the better of the two by the photo.

``--two-step`` tries choosing earlier instead: the N starts run the generator's half of the steps, the one
whose features match best is kept, and only it is refined in pixels for the other half (the default keeps
the best start after both halves). A prototype from recipes' public calls, not a library setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from photos import SETS, photo  # bench/photos.py: the tuning / validation split
from tables import mean_sd  # bench/tables.py

from cnnvis.io.images import hwc_to_bchw
from cnnvis.models.registry import load_model
from cnnvis.recipes.metrics import feature_errors, pixel_correlation
from cnnvis.recipes.recon import image_render, invert_image
from cnnvis.video.temporal import WHOLE_CANVAS

# The refinement of --polarity goes on at the rate where the inversion's schedule ended (pixels: 0.1 to 0.01), so that
# it polishes the kept start instead of moving it away (at 0.1 again, 50 steps cost chelsea 0.09 and coffee 0.17).
POLARITY_REFINE = dict(lr=0.01, lr_end=0.01)
LAYOUT_SIDE = 28  # px: the side at which the starts' layouts are compared (a 224 px image's 8 px blocks)


def consensus_start(images: torch.Tensor) -> int:
    """Index of the start (of ``images``, (N, 3, H, W) RGB in [0, 1]) whose coarse layout agrees best, on
    average, with the others': the medoid by the correlation of their luminance at LAYOUT_SIDE px."""
    if images.shape[0] < 2:
        return 0
    lum = F.interpolate(images.float().mean(1, keepdim=True), size=(LAYOUT_SIDE, LAYOUT_SIDE), mode="area").flatten(1)
    lum = lum - lum.mean(1, keepdim=True)
    lum = lum / (lum.norm(dim=1, keepdim=True) + 1e-12)
    agree = lum @ lum.T
    return int(torch.argmax(agree.sum(1) - agree.diagonal()))


def reversed_contrast(image: torch.Tensor) -> torch.Tensor:
    """``image`` (3, H, W) RGB in [0, 1] with its luminance mirrored about its mean: each pixel moved by the same
    amount in every channel (so its colour differences stay), dark and light swapped, clamped to [0, 1]."""
    lum = image.mul(torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)).sum(0, keepdim=True)
    return (image + 2 * (lum.mean() - lum)).clamp(0, 1)


def polarity_rules(model, layer: str, kept: torch.Tensor, photo_hwc: np.ndarray, refine_steps: int) -> dict:
    """``flip@3``: the pixel correlation of ``kept`` (3, H, W) or of its reversed twin, each refined in pixels for
    ``refine_steps`` steps, whichever then has the lower feature error at ``layer``; ``flip-oracle@3``: the better of
    the two by the photo ``photo_hwc`` (H, W, 3); ``twin-error``: the twin's feature error over the start's."""
    ref = hwc_to_bchw(photo_hwc)[0]
    refined = []
    for x in (kept, reversed_contrast(kept)):
        y = refine_pixels(model, photo_hwc, layer, x.permute(1, 2, 0).numpy(), refine_steps, **POLARITY_REFINE)
        refined.append(hwc_to_bchw(y)[0])
    errors = [feature_errors(model, x[None], ref[None], [layer])[layer] for x in refined]
    corr = [pixel_correlation(x, ref) for x in refined]
    return {"flip@3": corr[int(np.argmin(errors))], "flip-oracle@3": max(corr), "twin-error": errors[1] / errors[0]}


def run_photo(model, name: str, layer: str, starts: int, steps: int, mean_refine: int = 0, polarity: int = 0) -> dict:
    """Every start's pixel correlation with the photo, its feature score and the rules' picks. With
    ``mean_refine`` R, the starts run ``steps - R`` iterations and the mean of the first 3 is refined in
    pixels for R more (the same 200 iterations a start gets), scored as ``mean-refined@3``."""
    a = photo(name, 224)
    r = image_render(a, [layer], model, steps=steps - mean_refine, starts=starts)
    r.start = dataclasses.replace(r.start, keep_best=False)
    images = r.run()  # (N, 3, H, W): every start
    scores = r.gradient.item_scores.tolist()  # minus each start's feature error, last evaluation
    ref = hwc_to_bchw(a)[0]
    corr = [pixel_correlation(img, ref) for img in images]
    row = {"image": name, "corr": corr, "score": scores}
    for n in sorted({3, starts}):
        if n > starts:
            continue
        row[f"feature@{n}"] = corr[int(np.argmax(scores[:n]))]
        row[f"consensus@{n}"] = corr[consensus_start(images[:n])]
        row[f"oracle@{n}"] = max(corr[:n])
        row[f"random@{n}"] = statistics.mean(corr[:n])
        row[f"mean@{n}"] = pixel_correlation(images[:n].mean(0), ref)
    if polarity:
        row.update(polarity_rules(model, layer, images[int(np.argmax(scores[:3]))], a, polarity))
    if mean_refine:
        mean = images[:3].mean(0).permute(1, 2, 0).numpy()
        x = refine_pixels(model, a, layer, mean, mean_refine)
        row["mean-refined@3"] = pixel_correlation(hwc_to_bchw(x)[0], ref)
    return row


@dataclasses.dataclass
class LowpassAnchor:
    """A penalty ``weight * sum((pool(x) - pool(target))^2)`` over LAYOUT_SIDE px colour averages: the
    canvas pulled toward ``target`` (1, 3, H, W) at low frequency only."""

    weight: float
    target: torch.Tensor
    halo: int = WHOLE_CANVAS  # regularizers go strip by strip; this one compares whole images

    def loss(self, x: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(x[:, :3], LAYOUT_SIDE)
        return self.weight * (pooled - F.adaptive_avg_pool2d(self.target.to(x), LAYOUT_SIDE)).square().sum()


@dataclasses.dataclass
class ColourAnchor:
    """A penalty ``weight * (|mu(x) - mu(t)|^2 + |C(x) - C(t)|_F^2)`` on the canvas's colour statistics: the
    mean ``mu`` (3,) and covariance ``C`` (3, 3) of its RGB pixels, pulled toward those of ``target``
    (1, 3, H, W). No place is held, only the palette (the generator's draw keeps the photo's colours and
    contrast sign where the pixel half loses them, bench/RESULTS.md)."""

    weight: float
    target: torch.Tensor
    halo: int = WHOLE_CANVAS

    @staticmethod
    def stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        px = x[:, :3].flatten(2)  # (N, 3, HW)
        mu = px.mean(2)
        centred = px - mu[..., None]
        return mu, centred @ centred.transpose(1, 2) / px.shape[2]

    def loss(self, x: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        mu, cov = self.stats(x.float())
        mu_t, cov_t = self.stats(self.target.to(x.device).float())
        return self.weight * ((mu - mu_t).square().sum() + (cov - cov_t).square().sum())


def generator_draw(model, a, layer: str, starts: int, steps: int):
    """The generator's half of an inversion of photo ``a``: N starts, the best kept (H, W, 3)."""
    drawn, _ = invert_image(a, [layer], model, steps=steps // 2, starts=starts, dgn_refine=0.0)
    return drawn


def refine_pixels(model, a, layer: str, start: np.ndarray, steps: int, **options) -> np.ndarray:
    """``steps`` of the pixel inversion of photo ``a`` from the image ``start`` (H, W, 3), one start (H, W, 3)."""
    x, _ = invert_image(a, [layer], model, steps=steps, prior=None, initial_image=start, starts=1, **options)
    return x


def refine(model, a, layer: str, drawn, steps: int, penalties=()):
    """The pixel half from the generator's draw, one start (H, W, 3)."""
    return refine_pixels(model, a, layer, drawn, steps - steps // 2, penalties=penalties)


def run_anchor(model, name: str, layer: str, starts: int, steps: int, weights, anchor=LowpassAnchor) -> dict:
    """The generator's half (N starts, the best kept), then the pixel half under each anchor weight
    (``anchor``: LowpassAnchor or ColourAnchor)."""
    a = photo(name, 224)
    ref = hwc_to_bchw(a)
    drawn = generator_draw(model, a, layer, starts, steps)
    target = hwc_to_bchw(drawn)
    row = {"image": name, "generator": pixel_correlation(target, ref)}
    row["corr"] = [row["generator"]]
    for w in weights:
        pen = [anchor(w, target)] if w > 0 else []
        row[f"anchor {w:g}@{starts}"] = pixel_correlation(hwc_to_bchw(refine(model, a, layer, drawn, steps, pen)), ref)
        row["corr"].append(row[f"anchor {w:g}@{starts}"])
    return row


def run_two_step(model, name: str, layer: str, starts: int, steps: int) -> dict:
    """The N starts through the generator for half the steps, the best kept, then refined in pixels alone."""
    a = photo(name, 224)
    t0 = time.perf_counter()
    drawn = generator_draw(model, a, layer, starts, steps)
    refined = refine(model, a, layer, drawn, steps)
    seconds = time.perf_counter() - t0
    corr = [pixel_correlation(hwc_to_bchw(x), hwc_to_bchw(a)) for x in (drawn, refined)]
    return {"image": name, "corr": corr, "generator": corr[0], f"two-step@{starts}": corr[1], "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["tuning"], choices=list(SETS))
    ap.add_argument("--layer", default="conv_head")
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--json", default=None)
    ap.add_argument("--two-step", action="store_true", help="choose after the generator's half, refine only it")
    ap.add_argument("--anchor-weights", default=None, help="W1,W2,...: refine the draw under a low-pass pull")
    ap.add_argument("--mean-refine", type=int, default=0, help="R: the starts' mean refined for the last R steps")
    ap.add_argument("--anchor", choices=("lowpass", "colour"), default="lowpass", help="what --anchor-weights holds")
    ap.add_argument("--polarity", type=int, default=0, help="R: refine the kept start and its reversed twin R steps")
    args = ap.parse_args()
    torch.set_num_threads(2)
    model = load_model("efficientnet-lite0")
    rows = []
    for s in args.sets:
        for name in SETS[s]:
            if args.anchor_weights:
                weights = [float(w) for w in args.anchor_weights.split(",")]
                anchor = ColourAnchor if args.anchor == "colour" else LowpassAnchor
                row = run_anchor(model, name, args.layer, args.starts, args.steps, weights, anchor)
            elif args.two_step:
                row = run_two_step(model, name, args.layer, args.starts, args.steps)
            else:
                row = run_photo(model, name, args.layer, args.starts, args.steps, args.mean_refine, args.polarity)
            row["set"] = s
            rows.append(row)
            print(
                name,
                " ".join(f"{c:.2f}" for c in row["corr"]),
                {k: round(v, 2) for k, v in row.items() if "@" in k or k == "twin-error"},
                flush=True,
            )
    rules = [k for k in rows[0] if "@" in k or k == "generator"]
    print("\n| set | rule | pixel corr (mean ± sd) | lowest | per photo |\n|---|---|---|---|---|")
    for s in args.sets:
        rs = [r for r in rows if r["set"] == s]
        for rule in rules:
            v = [r[rule] for r in rs]
            print(f"| {s} | {rule} | {mean_sd(v)} | {min(v):.2f} | {' '.join(f'{x:.2f}' for x in v)} |")
        if "seconds" in rs[0]:
            print(f"{s}: {statistics.median(r['seconds'] for r in rs):.1f} s per inversion (median)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
