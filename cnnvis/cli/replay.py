"""``cnnvis replay IMAGE`` and ``cnnvis resume CHECKPOINT``: run a recorded command again.

The command is invoked with the recorded parameters (every flag, defaults included), from the
recorded working directory, with the recorded number of CPU threads, after checking that every
input file still has the recorded SHA-256 (an input missing from its recorded path, say a scratch
folder of another machine, is looked for by its parameter's value and its SHA-256). Differences
between the recorded and the running library versions, device, machine and thread count are noted
on stderr first. On CPU with the same versions the result is the same image bit for bit (``replay
--check`` verifies it, and explains a mismatch by those differences). ``resume`` does the same from a checkpoint's
manifest and hands the checkpoint's render state to the run, which goes on from there.
"""

from __future__ import annotations

import os

import click
import numpy as np

from cnnvis.errors import InputError
from cnnvis.io.manifest import read_manifest
from cnnvis.recipes.replay import (
    EXIT_DIFFERENT,
    check_shape,
    check_trust,
    default_out,
    differences,
    locate_inputs,
    note_differences,
    outputs_beside,
    read_checkpoint,
    read_pixels,
    recorded_threads,
    relative_to,
    replay_targets,
    version_text,
)


def _recorded_params(ctx: click.Context, command: click.Command, manifest: dict, source: str) -> dict:
    """The manifest's parameters, each converted and checked by its click option as if typed on the
    command line: a value of the wrong type or range is one line, not a traceback deep in a run.
    Only the command's own exposed parameters are taken (a recorded ``preset`` is not re-read:
    the manifest already holds every value it gave)."""
    params = manifest.get("params") or {}  # a dict: check_shape ran
    options = {p.name: p for p in command.params if p.expose_value}
    unknown = sorted(set(params) - set(options))
    if unknown:
        made_by = (manifest.get("versions") or {}).get("cnnvis")
        raise InputError(
            f"the manifest of '{source}' has parameter '{unknown[0]}' that this cnnvis's {command.name} does not know; "
            f"use the cnnvis version that made it ({made_by})"
        )
    sub = click.Context(command, parent=ctx, info_name=command.name)
    checked = {}
    from cnnvis.models.compute import BEFORE_COMPUTE_SETTINGS
    from cnnvis.priors.spec import BEFORE_LATTICE_SETTINGS
    from cnnvis.recipes.invert import BEFORE_STARTS_SETTINGS
    from cnnvis.recipes.prefer import BEFORE_ROBUST_SETTINGS

    before = {**BEFORE_COMPUTE_SETTINGS, **BEFORE_LATTICE_SETTINGS, **BEFORE_STARTS_SETTINGS, **BEFORE_ROBUST_SETTINGS}
    for name, value in before.items():
        if name in options and name not in params:
            checked[name] = value  # a run recorded before the setting existed ran this way
    for name, value in params.items():
        try:
            if isinstance(value, bool) and not getattr(options[name], "is_flag", False):
                raise click.BadParameter(f"expected a value, got {str(value).lower()}")  # JSON true is no number
            checked[name] = options[name].type_cast_value(sub, value)
        except (click.BadParameter, TypeError, ValueError, OverflowError) as e:
            why = e.format_message() if isinstance(e, click.BadParameter) else f"{type(e).__name__}: {e}"
            raise InputError(
                f"the manifest of '{source}' has a bad value for '{name}' ({why.splitlines()[0][:160]}); "
                f"it was edited or made by another program"
            ) from None
    return checked


def _invoke_recorded(
    ctx: click.Context,
    manifest: dict,
    out: str,
    source: str,
    image_dir: str | None = None,
    trust_model: bool = False,
    verb: str = "replay",
) -> tuple[int, list]:
    """Run the command of ``manifest`` with its parameters, ``out`` replaced; return its exit code
    and the differences between the recorded environment and this one (noted on stderr first)."""
    import torch

    from cnnvis.pipeline.device import pick_device

    check_shape(manifest, source)
    name = manifest.get("command")
    command = ctx.find_root().command.commands.get(name) if isinstance(name, str) else None
    if command is None or name in ("replay", "resume"):
        raise InputError(f"the manifest of '{source}' names command {name!r}, which cannot be run again")
    params = _recorded_params(ctx, command, manifest, source)
    check_trust(command.name, params, source, trust_model, verb)
    cwd = manifest.get("cwd")
    run_dir = cwd if cwd and os.path.isdir(cwd) else os.getcwd()  # a recorded scratch folder gone: stay here
    params = locate_inputs(manifest, params, image_dir, run_dir)
    if os.path.abspath(run_dir) == os.getcwd():
        out = relative_to(out, run_dir)  # the command prints the paths it writes: as the recorded run did
    params = outputs_beside(params, out)
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    threads = recorded_threads(manifest)
    try:
        device = pick_device(params["device"]) if isinstance(params.get("device"), str) else None
    except InputError:
        device = None  # the command says so itself
    old_threads, old_cwd = torch.get_num_threads(), os.getcwd()
    try:
        if threads:
            torch.set_num_threads(threads)  # float summation order depends on it
        diffs = differences(manifest, device, torch.get_num_threads())
        if diffs:
            click.echo(f"note: {note_differences(diffs)}", err=True)
        os.chdir(run_dir)  # relative inputs the manifest does not list (an -O file) resolve as they did
        try:
            ctx.invoke(command, **params)
            return 0, diffs
        except SystemExit as e:
            return (e.code if isinstance(e.code, int) else 1), diffs
    finally:
        torch.set_num_threads(old_threads)
        os.chdir(old_cwd)


def run_replay(ctx: click.Context, image: str, out: str | None, check: bool, trust_model: bool = False) -> int:
    """Re-run ``image``'s recorded command into ``out``; return the exit code."""
    manifest = read_manifest(image)
    image_abs = os.path.abspath(image)
    # one image of a batch render (NAME_c5.png), a progress video or a morph GIF: the re-run writes
    # its twin beside its own output
    out, made = replay_targets(manifest, os.path.abspath(out or default_out(image)))
    code, diffs = _invoke_recorded(ctx, manifest, out, image, os.path.dirname(image_abs), trust_model)
    if code != 0 or not check:
        return code
    a, b = read_pixels(image_abs), read_pixels(made)
    if a.shape == b.shape and np.array_equal(a, b):
        click.echo(f"replay matches {image} bit for bit")
        return 0
    if a.shape != b.shape:
        diff = "shapes differ"
    else:
        worst, where = int(np.abs(a.astype(int) - b.astype(int)).max()), int((a != b).any(-1).sum())
        diff = f"max |difference| {worst} in {where} pixels"
    changes = ", ".join(f"{what} {version_text(x)} → {version_text(y)}" for what, x, y in diffs)
    if diffs:
        why = "not expected to be bit-identical: " + changes
    else:
        why = "expected to be bit-identical (same versions, device, machine and threads), so the difference is real"
    click.echo(f"replay differs from {image}: {diff}; {why}", err=True)
    return EXIT_DIFFERENT


def run_resume(ctx: click.Context, checkpoint: str, out: str | None, trust_model: bool = False) -> int:
    """Finish the run saved in ``checkpoint``; it writes beside the checkpoint, under the recorded
    output's name (or to ``out``)."""
    from cnnvis.cli.checkpoints import RESUME_STATE

    ck = read_checkpoint(checkpoint)
    manifest = ck["manifest"]
    check_shape(manifest, checkpoint)
    params = manifest.get("params") or {}
    recorded = params.get("out")
    if out is None and not (isinstance(recorded, str) and os.path.basename(os.path.normpath(recorded))):
        raise InputError(f"checkpoint '{checkpoint}' records no output path; pass --out")
    here = os.path.dirname(os.path.abspath(checkpoint))
    folder = recorded.endswith(("/", os.sep)) if out is None else False
    target = (
        os.path.abspath(out)
        if out
        else os.path.join(here, os.path.basename(os.path.normpath(recorded))) + (os.sep if folder else "")
    )
    token = RESUME_STATE.set(ck["state"])
    try:
        return _invoke_recorded(ctx, manifest, target, checkpoint, here, trust_model, verb="resume")[0]
    finally:
        RESUME_STATE.reset(token)
