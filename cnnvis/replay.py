"""``cnnvis replay IMAGE`` and ``cnnvis resume CHECKPOINT``: run a recorded command again.

The command is invoked with the recorded parameters (every flag, defaults included), from the
recorded working directory, with the recorded number of CPU threads, after checking that every
input file still has the recorded SHA-256. On CPU with the same versions the result is the same
image bit for bit (``replay --check`` verifies it). ``resume`` does the same from a checkpoint's
manifest and hands the checkpoint's render state to the run, which goes on from there.
"""

from __future__ import annotations

import os

import click
import numpy as np

from .errors import InputError
from .manifest import file_sha256, read_manifest

EXIT_DIFFERENT = 1


def _default_out(image: str) -> str:
    stem, ext = os.path.splitext(image)
    return f"{stem}.replay{ext}"


def _invoke_recorded(ctx: click.Context, manifest: dict, out: str, source: str) -> int:
    """Run the command of ``manifest`` with its parameters, ``out`` replaced; return its exit code."""
    import torch

    command = ctx.find_root().command.commands.get(manifest.get("command") or "")
    if command is None or manifest["command"] in ("replay", "resume"):
        raise InputError(f"the manifest of '{source}' names command {manifest.get('command')!r}, which cannot be run again")
    for name, rec in (manifest.get("inputs") or {}).items():
        path = rec.get("path", "")
        if not os.path.isfile(path):
            raise InputError(f"input {name} '{path}' of the recorded run is missing; restore it to run it again")
        if file_sha256(path) != rec.get("sha256"):
            raise InputError(f"input {name} '{path}' changed since the run (its SHA-256 differs); running it again needs the same file")
    params = dict(manifest.get("params") or {})
    unknown = sorted(set(params) - {p.name for p in command.params})
    if unknown:
        raise InputError(f"the manifest of '{source}' has parameter '{unknown[0]}' that this cnnvis's {command.name} does not know; use the cnnvis version that made it ({(manifest.get('versions') or {}).get('cnnvis')})")
    params["out"] = out
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    threads = (manifest.get("device") or {}).get("threads")
    old_threads, old_cwd = torch.get_num_threads(), os.getcwd()
    cwd = manifest.get("cwd")
    try:
        if threads:
            torch.set_num_threads(int(threads))  # float summation order depends on it
        if cwd and os.path.isdir(cwd):
            os.chdir(cwd)
        try:
            ctx.invoke(command, **params)
            return 0
        except SystemExit as e:
            return e.code if isinstance(e.code, int) else 1
    finally:
        torch.set_num_threads(old_threads)
        os.chdir(old_cwd)


def run_replay(ctx: click.Context, image: str, out: str | None, check: bool) -> int:
    """Re-run ``image``'s recorded command into ``out``; return the exit code."""
    import imageio.v3 as iio

    manifest = read_manifest(image)
    image_abs = os.path.abspath(image)
    out = os.path.abspath(out or _default_out(image))
    if out == image_abs:
        raise InputError(f"--out '{out}' is the image being replayed; write the replay elsewhere")
    code = _invoke_recorded(ctx, manifest, out, image)
    if code != 0 or not check:
        return code
    a, b = iio.imread(image_abs), iio.imread(out)
    if a.shape == b.shape and np.array_equal(a, b):
        click.echo(f"replay matches {image} bit for bit")
        return 0
    diff = "shapes differ" if a.shape != b.shape else f"max |difference| {int(np.abs(a.astype(int) - b.astype(int)).max())} in {int((a != b).any(-1).sum())} pixels"
    click.echo(f"replay differs from {image}: {diff}", err=True)
    return EXIT_DIFFERENT


def read_checkpoint(path: str) -> dict:
    """A checkpoint written by an interrupted or checkpointing run; InputError if it is not one."""
    from .io import load_torch
    from .runner import CHECKPOINT_FORMAT

    ck = load_torch(path, "checkpoint", "it is truncated or not a cnnvis checkpoint", missing_fix="pass the NAME.ckpt an interrupted run wrote")
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT or not isinstance(ck.get("state"), dict) or not isinstance(ck.get("manifest"), dict):
        raise InputError(f"'{path}' is not a cnnvis render checkpoint (format {CHECKPOINT_FORMAT}); pass the NAME.ckpt of dream, invert or prefer")
    return ck


def run_resume(ctx: click.Context, checkpoint: str, out: str | None) -> int:
    """Finish the run saved in ``checkpoint``; it writes the recorded output (or ``out``)."""
    from .runner import RESUME_STATE

    ck = read_checkpoint(checkpoint)
    manifest = ck["manifest"]
    recorded = (manifest.get("params") or {}).get("out")
    if out is None and not recorded:
        raise InputError(f"checkpoint '{checkpoint}' records no output path; pass --out")
    target = os.path.abspath(out) if out else os.path.join(manifest.get("cwd") or "", recorded)
    token = RESUME_STATE.set(ck["state"])
    try:
        return _invoke_recorded(ctx, manifest, target, checkpoint)
    finally:
        RESUME_STATE.reset(token)
