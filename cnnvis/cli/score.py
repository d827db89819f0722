"""``cnnvis score IMAGES... [--class K]``: how natural each image's spectrum is and, for class
visualizations, how often other networks see the class (:mod:`cnnvis.recipes.quality`)."""

from __future__ import annotations

import json

import click

from cnnvis.recipes.quality import ScoreOptions


def run_score(**kw) -> int:
    """Score the images; print a table (and write JSON); return the exit code."""
    from cnnvis.io.files import write_text_atomic
    from cnnvis.io.images import read_image
    from cnnvis.recipes.quality import available_scorers, check_class, image_scores

    opts = ScoreOptions.take(kw)
    images = {path: read_image(path) for path in opts.images}  # a non-image fails here, in one line
    scorers = []
    if opts.label is not None:
        from cnnvis.models.registry import load_model

        scorers = [load_model(name) for name in available_scorers()]
        check_class(opts.label, min(_classes(m) for m in scorers))
    scores = image_scores(images, opts.label, scorers)
    for path, row in scores.items():
        cells = [f"slope {row['spectral_slope']:.2f}", f"HF {row['high_frequency_energy']:.3f}"]
        cells.append(f"clipped {row['clipped_fraction']:.3f}")
        cells += [f"{m.name} rank {row[m.name]['rank']} p {row[m.name]['probability']:.3f}" for m in scorers]
        click.echo(f"{path}: " + "  ".join(cells))
    for m in scorers:
        top1 = sum(scores[p][m.name]["hit1"] for p in scores) / len(scores)
        top5 = sum(scores[p][m.name]["hit5"] for p in scores) / len(scores)
        click.echo(f"class {opts.label} by {m.name}: top-1 {top1:.2f}, top-5 {top5:.2f} of {len(scores)} images")
    if opts.json_out:
        text = json.dumps({"class": opts.label, "images": scores}, indent=1, sort_keys=True)
        write_text_atomic(opts.json_out, text)
    return 0


def _classes(model) -> int:
    import torch

    with torch.no_grad():
        return int(model.module(torch.zeros(1, 3, model.input_size, model.input_size)).shape[-1])
