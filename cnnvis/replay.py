"""``cnnvis replay IMAGE``: run again the command recorded in an output's manifest.

The command is invoked with the recorded parameters (every flag, defaults included), from the
recorded working directory, with the recorded number of CPU threads, after checking that every
input file still has the recorded SHA-256. On CPU with the same versions the result is the same
image bit for bit (``--check`` verifies it).
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


def run_replay(ctx: click.Context, image: str, out: str | None, check: bool) -> int:
    """Re-run ``image``'s recorded command into ``out``; return the exit code."""
    import imageio.v3 as iio
    import torch

    manifest = read_manifest(image)
    image_abs = os.path.abspath(image)
    out = os.path.abspath(out or _default_out(image))
    if out == image_abs:
        raise InputError(f"--out '{out}' is the image being replayed; write the replay elsewhere")
    command = ctx.find_root().command.commands.get(manifest.get("command") or "")
    if command is None or manifest["command"] == "replay":
        raise InputError(f"the manifest of '{image}' names command {manifest.get('command')!r}, which replay cannot run")
    for name, rec in (manifest.get("inputs") or {}).items():
        path = rec.get("path", "")
        if not os.path.isfile(path):
            raise InputError(f"input {name} '{path}' of the recorded run is missing; restore it to replay")
        if file_sha256(path) != rec.get("sha256"):
            raise InputError(f"input {name} '{path}' changed since the run (its SHA-256 differs); replay needs the same file")
    params = dict(manifest.get("params") or {})
    known = {p.name for p in command.params}
    unknown = sorted(set(params) - known)
    if unknown:
        raise InputError(f"the manifest of '{image}' has parameter '{unknown[0]}' that this cnnvis's {command.name} does not know; replay it with the cnnvis version that made it ({(manifest.get('versions') or {}).get('cnnvis')})")
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
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    finally:
        torch.set_num_threads(old_threads)
        os.chdir(old_cwd)
    if code != 0 or not check:
        return code
    a, b = iio.imread(image_abs), iio.imread(out)
    if a.shape == b.shape and np.array_equal(a, b):
        click.echo(f"replay matches {image} bit for bit")
        return 0
    diff = "shapes differ" if a.shape != b.shape else f"max |difference| {int(np.abs(a.astype(int) - b.astype(int)).max())} in {int((a != b).any(-1).sum())} pixels"
    click.echo(f"replay differs from {image}: {diff}", err=True)
    return EXIT_DIFFERENT
