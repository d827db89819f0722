"""``cnnvis atlas`` once its flags are parsed: plan with the library
(:func:`cnnvis.recipes.atlas_plan.plan_atlas`), skip what an earlier run left
(:func:`cnnvis.recipes.atlas_record.start_atlas`), render the rest in batches (in-process, or on
Ray: :mod:`cnnvis.recipes.atlas_ray`) under a progress bar, and write each unit's image
atomically as it arrives, then the contact sheets, ``atlas.json`` and ``index.html``.

Nothing lost, nothing twice: ``atlas.json`` is rewritten (atomically) every few seconds and at the
end, a rerun of the same command skips every unit whose image and manifest match the run's
settings, and a first Ctrl-C lets the batches in flight finish, writes them, and exits 130.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import click

from cnnvis.cli import interrupts
from cnnvis.cli.options import declared_options
from cnnvis.defaults import ATLAS_BATCH
from cnnvis.io.files import sweep_temporaries
from cnnvis.recipes.atlas_files import AtlasWriter, open_atlas_folder
from cnnvis.recipes.atlas_plan import AtlasOptions, AtlasPlan, LayerPlan, batches, plan_atlas
from cnnvis.recipes.atlas_record import start_atlas

__all__ = ["atlas_options", "run_atlas"]

# Flags that steer one run (which units, where, on what), not what a unit looks like: left out of
# the command each unit records.
_PER_RUN = ("units", "out", "batch_size", "ray_address", "workers", "force", "quiet")


def atlas_options(fn):
    """The atlas command's own flags, generated from :class:`AtlasOptions` (declared once there)."""
    return declared_options(AtlasOptions)(fn)


def _command_words(ctx: click.Context, drop: Sequence[str] = ()) -> list[str]:
    """The running command as words: every parameter that differs from its default (a preset's
    values included, so the words stand alone)."""
    words = ["cnnvis", ctx.command.name]
    for p in ctx.command.params:
        if p.name in drop or not isinstance(p, (click.Option, click.Argument)):
            continue
        value = ctx.params.get(p.name)
        if isinstance(p, click.Argument):
            words += [str(value)] if value is not None else []
        elif not (value is None or value == p.default or (p.multiple and not value) or p.name == "preset"):
            words += _option_words(p, value)
    return words


def _option_words(p: click.Option, value) -> list[str]:
    """One option with a value other than its default, as words."""
    flag = p.opts[0]
    if p.is_flag and not p.secondary_opts:
        return [flag] if value else []
    if p.is_flag:
        return [flag if value else p.secondary_opts[0]]
    if p.multiple:
        return [w for v in value for w in (flag, str(v))]
    return [flag, str(value)]


def _render(plan: AtlasPlan, model, opts: AtlasOptions, writer: AtlasWriter, total: int) -> int:
    """Render every batch of ``plan`` under a progress bar, writing each as it arrives; return
    how many units were written (fewer than ``total`` after Ctrl-C)."""
    from cnnvis.cli.progress import bar as progress_bar
    from cnnvis.recipes.atlas import UnitWorker, render_batches

    session = None
    if opts.ray_address is not None:
        from cnnvis.recipes.atlas_ray import RaySession

        session = RaySession(opts.ray_address, opts.workers)  # a bad address fails here, before the bar
    with progress_bar(total, unit="unit", quiet=opts.quiet) as bar:

        def on_result(lp: LayerPlan, result: dict) -> None:
            writer.batch(lp, result)
            bar.update(len(result["units"]))

        work = list(batches(plan))
        if session is not None:
            with session:
                session.render(plan, work, on_result, stop=interrupts.asked)
        else:  # the model loaded for planning renders too
            render_batches(UnitWorker(model, plan.device), plan, work, on_result, stop=interrupts.asked)
        return bar.n


def run_atlas(
    ctx: click.Context, opts: AtlasOptions, *, model: str, weights, device: str, prior, render_kw: dict
) -> int:
    """Render the atlas; return the exit code (0, or 130 after Ctrl-C).

    ``model``/``weights``/``device``: the model flags (``opts.model_arg`` already merged in);
    ``prior``: a :class:`cnnvis.priors.spec.PriorSpec`; ``render_kw``: the render flags, None where
    not given (the preferred-image defaults apply)."""
    from cnnvis.recipes.options import given

    options = given(render_kw)
    batch = int(options.pop("batch_size", None) or ATLAS_BATCH)
    seed = int(options.pop("seed", 0) or 0)
    out = open_atlas_folder(opts.out)
    plan, m = plan_atlas(
        opts,
        model=model,
        weights=weights,
        device=device,
        render=options,
        prior=prior,
        seed=seed,
        batch=batch,
        command=_command_words(ctx, drop=_PER_RUN),
    )
    for folder in [out] + [os.path.join(out, lp.name) for lp in plan.layers]:
        sweep_temporaries(folder, force=True)  # what a killed run was writing: never a unit
    atlas, skipped = start_atlas(plan, out, opts.force)
    if skipped:
        click.echo(f"skipping {skipped} units already rendered in {out}", err=True)
    total = sum(len(lp.units) for lp in plan.layers)
    from cnnvis.cli.recording import current_manifest

    writer = AtlasWriter(plan, atlas, out, current_manifest(model=m, device=plan.device))
    started = time.perf_counter()
    done = _render(plan, m, opts, writer, total)
    writer.finish()
    if interrupts.asked():
        click.echo(
            f"interrupted: {done} of {total} units written to {out}; rerun the same command to finish the rest",
            err=True,
        )
        return interrupts.exit_code()
    if not opts.quiet:
        rate = done / max(1e-9, time.perf_counter() - started) * 60
        click.echo(
            f"wrote {done} unit{'' if done == 1 else 's'} ({rate:.1f} units/min) to {out}: atlas.json, index.html"
            + (f"; {skipped} were already there" if skipped else "")
        )
    return 0
