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
from cnnvis.io.manifest import file_sha256, library_versions, read_manifest

EXIT_DIFFERENT = 1


def _default_out(image: str) -> str:
    stem, ext = os.path.splitext(image)
    return f"{stem}.replay{ext}"


def _param_value(params: dict, key: str):
    """The value of the manifest input ``key`` (``name`` or ``name[i]``) in ``params``, and a
    function that returns ``params`` with that value replaced."""
    name, _, index = key.partition("[")
    value = params.get(name)
    i = int(index.rstrip("]")) if index else (0 if isinstance(value, list) and len(value) == 1 else None)
    if i is not None:
        if not isinstance(value, list) or i >= len(value):
            return None, None
        item = value[i]

        def put(new, name=name, i=i):
            items = list(params[name])
            items[i] = new
            return {**params, name: items}

        return item, put
    return value, (lambda new, name=name: {**params, name: new})


def _file_form(value: str, path: str, recorded_cwd: str) -> tuple[str, str]:
    """(the file part, the prefix before it) of a parameter value that named input ``path``:
    the whole value, or the FILE of a ``LAYER=FILE`` pair."""
    if "=" not in value or os.path.abspath(os.path.join(recorded_cwd, value)) == path:
        return value, ""
    head, _, tail = value.partition("=")
    if os.path.abspath(os.path.join(recorded_cwd, tail)) == path or os.path.basename(tail) == os.path.basename(path):
        return tail, head + "="
    return value, ""


def _locate_inputs(manifest: dict, params: dict, image_dir: str | None, run_dir: str) -> dict:
    """Check every recorded input; return ``params`` with each input's path as the run will find it.

    A recorded path that is present must have the recorded SHA-256. A missing one (say a scratch
    folder of another machine) is looked for at the parameter's own value resolved against the
    current directory, the replayed image's directory, then the recorded working directory; the
    first file there with the recorded SHA-256 is used. An input found elsewhere than its recorded
    path, or a run outside the recorded working directory, gets its absolute path in the params."""
    recorded_cwd = manifest.get("cwd") or ""
    for name, rec in (manifest.get("inputs") or {}).items():
        path, sha = rec.get("path", ""), rec.get("sha256")
        value, put = _param_value(params, name)
        rel, prefix = _file_form(value, path, recorded_cwd) if isinstance(value, str) else ("", "")
        found = None
        if os.path.isfile(path):
            if file_sha256(path) != sha:
                raise InputError(f"input {name} '{path}' changed since the run (its SHA-256 differs); running it again needs the same file")
            found = path
        elif rel:
            seen = set()
            for base in (os.getcwd(), image_dir, recorded_cwd):
                cand = os.path.abspath(os.path.join(base, rel)) if base else None
                if cand and cand not in seen and os.path.isfile(cand):
                    seen.add(cand)
                    if file_sha256(cand) == sha:
                        found = cand
                        break
        if found is None:
            raise InputError(f"input {name} '{path}' of the recorded run is missing; restore it to run it again")
        moved = found != path or os.path.abspath(run_dir) != os.path.abspath(recorded_cwd or run_dir)
        if rel and put is not None and moved:
            params = put(prefix + found)
    return params


def _differences(manifest: dict, device, threads: int) -> list[tuple[str, object, object]]:
    """(what, recorded, running) for each recorded library version, device type, GPU, machine
    and thread count that differs from this run's; ``device`` None: not compared."""
    import platform

    import torch

    diffs = []
    recorded = manifest.get("versions") or {}
    running = library_versions()
    for pkg in running:  # in library_versions' order (manifests store theirs sorted)
        if pkg in recorded and recorded[pkg] != running[pkg]:
            diffs.append((pkg, recorded[pkg], running[pkg]))
    dev = manifest.get("device") or {}
    if device is not None and dev.get("type"):
        try:
            rec_type = torch.device(dev["type"]).type
        except (RuntimeError, TypeError):
            rec_type = str(dev["type"])
        if rec_type != device.type:
            diffs.append(("device", rec_type, device.type))
        elif device.type == "cuda" and dev.get("name"):
            name = torch.cuda.get_device_name(device)
            if name != dev["name"]:
                diffs.append(("GPU", dev["name"], name))
    if dev.get("machine") and dev["machine"] != platform.machine():
        diffs.append(("machine", dev["machine"], platform.machine()))
    if dev.get("threads") and int(dev["threads"]) != threads:
        diffs.append(("threads", int(dev["threads"]), threads))
    return diffs


def _v(version) -> str:
    return "(not installed)" if version is None else str(version)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _note(diffs) -> str:
    """``recorded with torch 2.15.0, running torch 2.14.1; threads 2 -> 1``."""
    libs = [(p, a, b) for p, a, b in diffs if p not in _ENV_KEYS]
    parts = []
    if libs:
        was = _and([f"{p} {_v(a)}" for p, a, _ in libs])
        now = _and([f"{p} {_v(b)}" for p, _, b in libs])
        parts.append(f"recorded with {was}, running {now}")
    parts += [f"{what} {a} -> {b}" for what, a, b in diffs if what in _ENV_KEYS]
    return "; ".join(parts)


_ENV_KEYS = ("device", "GPU", "machine", "threads")


def _invoke_recorded(ctx: click.Context, manifest: dict, out: str, source: str, image_dir: str | None = None) -> tuple[int, list]:
    """Run the command of ``manifest`` with its parameters, ``out`` replaced; return its exit code
    and the differences between the recorded environment and this one (noted on stderr first)."""
    import torch

    from cnnvis.pipeline.loop import pick_device

    command = ctx.find_root().command.commands.get(manifest.get("command") or "")
    if command is None or manifest["command"] in ("replay", "resume"):
        raise InputError(f"the manifest of '{source}' names command {manifest.get('command')!r}, which cannot be run again")
    params = dict(manifest.get("params") or {})
    unknown = sorted(set(params) - {p.name for p in command.params})
    if unknown:
        made_by = (manifest.get("versions") or {}).get("cnnvis")
        raise InputError(f"the manifest of '{source}' has parameter '{unknown[0]}' that this cnnvis's {command.name} does not know; use the cnnvis version that made it ({made_by})")
    cwd = manifest.get("cwd")
    run_dir = cwd if cwd and os.path.isdir(cwd) else os.getcwd()  # a recorded scratch folder gone: stay here
    params = _locate_inputs(manifest, params, image_dir, run_dir)
    params["out"] = out
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    threads = (manifest.get("device") or {}).get("threads")
    try:
        device = pick_device(params["device"]) if isinstance(params.get("device"), str) else None
    except InputError:
        device = None  # the command says so itself
    old_threads, old_cwd = torch.get_num_threads(), os.getcwd()
    try:
        if threads:
            torch.set_num_threads(int(threads))  # float summation order depends on it
        diffs = _differences(manifest, device, torch.get_num_threads())
        if diffs:
            click.echo(f"note: {_note(diffs)}", err=True)
        os.chdir(run_dir)
        try:
            ctx.invoke(command, **params)
            return 0, diffs
        except SystemExit as e:
            return (e.code if isinstance(e.code, int) else 1), diffs
    finally:
        torch.set_num_threads(old_threads)
        os.chdir(old_cwd)


def run_replay(ctx: click.Context, image: str, out: str | None, check: bool) -> int:
    """Re-run ``image``'s recorded command into ``out``; return the exit code."""
    import imageio.v3 as iio

    from cnnvis.io.images import labelled_path

    manifest = read_manifest(image)
    image_abs = os.path.abspath(image)
    out = os.path.abspath(out or _default_out(image))
    if out == image_abs:
        raise InputError(f"--out '{out}' is the image being replayed; write the replay elsewhere")
    code, diffs = _invoke_recorded(ctx, manifest, out, image, os.path.dirname(image_abs))
    if code != 0 or not check:
        return code
    # one image of a batch render (NAME_c5.png): the re-run wrote its twin as OUT_c5.png
    label = manifest.get("output_label")
    made = labelled_path(out, label) if label else out
    a, b = iio.imread(image_abs), iio.imread(made)
    if a.shape == b.shape and np.array_equal(a, b):
        click.echo(f"replay matches {image} bit for bit")
        return 0
    diff = "shapes differ" if a.shape != b.shape else f"max |difference| {int(np.abs(a.astype(int) - b.astype(int)).max())} in {int((a != b).any(-1).sum())} pixels"
    if diffs:
        why = "not expected to be bit-identical: " + ", ".join(f"{what} {_v(a)} → {_v(b)}" for what, a, b in diffs)
    else:
        why = "expected to be bit-identical (same versions, device, machine and threads), so the difference is real"
    click.echo(f"replay differs from {image}: {diff}; {why}", err=True)
    return EXIT_DIFFERENT


def read_checkpoint(path: str) -> dict:
    """A checkpoint written by an interrupted or checkpointing run; InputError if it is not one."""
    from cnnvis.cli.dream import CHECKPOINT_FORMAT
    from cnnvis.io.files import load_torch

    ck = load_torch(path, "checkpoint", "it is truncated or not a cnnvis checkpoint", missing_fix="pass the NAME.ckpt an interrupted run wrote")
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT or not isinstance(ck.get("state"), dict) or not isinstance(ck.get("manifest"), dict):
        raise InputError(f"'{path}' is not a cnnvis render checkpoint (format {CHECKPOINT_FORMAT}); pass the NAME.ckpt of dream, invert or prefer")
    return ck


def run_resume(ctx: click.Context, checkpoint: str, out: str | None) -> int:
    """Finish the run saved in ``checkpoint``; it writes the recorded output (or ``out``)."""
    from cnnvis.cli.dream import RESUME_STATE

    ck = read_checkpoint(checkpoint)
    manifest = ck["manifest"]
    recorded = (manifest.get("params") or {}).get("out")
    if out is None and not recorded:
        raise InputError(f"checkpoint '{checkpoint}' records no output path; pass --out")
    cwd = manifest.get("cwd")
    target = os.path.abspath(out) if out else os.path.join(cwd if cwd and os.path.isdir(cwd) else os.getcwd(), recorded)
    token = RESUME_STATE.set(ck["state"])
    try:
        return _invoke_recorded(ctx, manifest, target, checkpoint, os.path.dirname(os.path.abspath(checkpoint)))[0]
    finally:
        RESUME_STATE.reset(token)
