"""What ``cnnvis prefer`` does once its flags are parsed: split them into the recipe's typed
options (:mod:`cnnvis.recipes.prefer`), run, write the images (and an interpolation's GIF)."""

from __future__ import annotations

import os

import click

from cnnvis.cli.dream import check_alpha_output
from cnnvis.cli.runner import render_manifest, run_render
from cnnvis.io.outputs import OutputOptions
from cnnvis.models.options import ModelOptions
from cnnvis.priors.spec import PriorSpec
from cnnvis.recipes.options import given
from cnnvis.recipes.prefer import PreferOptions, prefer_render
from cnnvis.recipes.replay import ROLE_MORPH, with_role


def run_prefer(**kw) -> int:
    """Run the prefer command; return the process exit code."""
    from cnnvis.io.images import check_video_path, check_writable

    opts, model_opts, prior, outputs = (g.take(kw) for g in (PreferOptions, ModelOptions, PriorSpec, OutputOptions))
    check_writable(opts.out)
    check_alpha_output(opts.out, kw)
    if outputs.video:
        check_video_path(outputs.video)
    opts.check()
    prior.check()
    if (table := model_opts.layer_table()) is not None:
        opts.check_table(table)
    from cnnvis.models.registry import load_model  # torch: after the checks that need none
    from cnnvis.pipeline.device import pick_device
    from cnnvis.priors.dgn import prior_of

    device = pick_device(model_opts.device)
    model = load_model(model_opts.model, model_opts.weights, device)
    r = prefer_render(opts, model, device, prior_of(prior, model, device), given(kw))
    code, final = run_render(r, opts.out, outputs, labels=opts.labels())
    if code == 0 and opts.interpolate:
        _write_gif(final, r, opts.out, outputs.quiet)
    return code


def _write_gif(final, render, out: str, quiet: bool) -> None:
    """An interpolation's frames as NAME.gif, there and back, with its manifest."""
    from cnnvis.io.images import save_video, to_uint8

    gif = os.path.splitext(out)[0] + ".gif"
    frames = [to_uint8(final, render.cfg.output, i) for i in range(final.shape[0])]
    save_video(gif, frames + frames[-2:0:-1], fps=8, manifest=with_role(render_manifest(render), ROLE_MORPH))
    if not quiet:
        click.echo(f"wrote {gif} ({len(frames)} frames, there and back)")
