"""What replay and resume know about a recorded run, without click: the manifest's shape, its
inputs found again by SHA-256, whether its model runs code, where its outputs go, how the running
machine differs, and a checkpoint read safely. The CLI (:mod:`cnnvis.cli.replay`) invokes the
recorded command with these; nothing here prints or writes.
"""

from __future__ import annotations

import os
import re

from cnnvis.errors import InputError
from cnnvis.io.manifest import OUTPUT_PARAMS, file_sha256, library_versions

EXIT_DIFFERENT = 1


MODEL_PARAMS = ("model", "model_arg")  # the parameters that name a model, per command


MAX_THREADS = 1024  # a recorded thread count above this is not believed


LABEL_CHARS = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # an output label names a file beside --out: no path


# A manifest's ``output_role`` for a file that is not the command's --out (nor a labelled image of
# it): the progress video (--video NAME) and an interpolation's there-and-back GIF (NAME.gif).
ROLE_PROGRESS_VIDEO, ROLE_MORPH = "progress-video", "morph"


def with_role(manifest: dict | None, role: str) -> dict | None:
    """``manifest`` marked as that of the command's ``role`` file (None stays None)."""
    return None if manifest is None else dict(manifest, output_role=role)


def replay_targets(manifest: dict, out: str) -> tuple[str, str]:
    """(the --out a replay runs the recorded command with, the file of that run that twins the
    replayed one), for a replay asked to write ``out``: a progress video or a morph GIF is made
    beside the command's own output, which keeps its recorded extension."""
    params = manifest.get("params") or {}
    role = manifest.get("output_role")
    if role in (ROLE_PROGRESS_VIDEO, ROLE_MORPH):
        recorded = params.get("out")
        ext = os.path.splitext(recorded)[1] if isinstance(recorded, str) else ".png"
        main = os.path.splitext(out)[0] + (ext or ".png")
        stem = os.path.splitext(main)[0]
        video = params.get("video")
        if role == ROLE_MORPH or not isinstance(video, str):
            return main, stem + ".gif"
        return main, f"{stem}.{os.path.basename(os.path.normpath(video))}"
    label = manifest.get("output_label")
    if not label:
        return out, out
    from cnnvis.io.images import labelled_path

    return out, labelled_path(out, label)


def read_pixels(path: str):
    """uint8 pixels of an output: (H, W, C) for an image, (frames, H, W, C) for a GIF or video."""
    import imageio.v3 as iio

    from cnnvis.io.video import is_video

    return iio.imread(path, index=None) if is_video(path) else iio.imread(path)


def default_out(image: str) -> str:
    stem, ext = os.path.splitext(image)
    return f"{stem}.replay{ext}"


def param_value(params: dict, key: str):
    """The value of the manifest input ``key`` (``name`` or ``name[i]``) in ``params``, and a
    function that returns ``params`` with that value replaced."""
    name, _, index = key.partition("[")
    value = params.get(name)
    i = int(index.rstrip("]")) if index else (0 if isinstance(value, (list, tuple)) and len(value) == 1 else None)
    if i is not None:
        if not isinstance(value, (list, tuple)) or i >= len(value):  # tuples: the options' own values
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


def locate_inputs(manifest: dict, params: dict, image_dir: str | None, run_dir: str) -> dict:
    """Check every recorded input; return ``params`` with each input's path as the run will find it.

    A recorded path that is present must have the recorded SHA-256. A missing one (say a scratch
    folder of another machine) is looked for at the parameter's own value resolved against the
    current directory, the replayed image's directory, then the recorded working directory; the
    first file there with the recorded SHA-256 is used. An input found elsewhere than its recorded
    path, or a run outside the recorded working directory, gets its absolute path in the params."""
    recorded_cwd = manifest.get("cwd") or ""
    for name, rec in (manifest.get("inputs") or {}).items():
        path, sha = rec.get("path", ""), rec.get("sha256")
        value, put = param_value(params, name)
        rel, prefix = _file_form(value, path, recorded_cwd) if isinstance(value, str) else ("", "")
        found = None
        if os.path.isfile(path):
            if file_sha256(path) != sha:
                raise InputError(
                    f"input {name} '{path}' changed since the run (its SHA-256 differs); running it again needs the "
                    "same file"
                )
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


def differences(manifest: dict, device, threads: int) -> list[tuple[str, object, object]]:
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


def version_text(version) -> str:
    """A package version as a note shows it."""
    return "(not installed)" if version is None else str(version)


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def note_differences(diffs) -> str:
    """``recorded with torch 2.15.0, running torch 2.14.1; threads 2 -> 1``."""
    libs = [(p, a, b) for p, a, b in diffs if p not in _ENV_KEYS]
    parts = []
    if libs:
        was = _and([f"{p} {version_text(a)}" for p, a, _ in libs])
        now = _and([f"{p} {version_text(b)}" for p, _, b in libs])
        parts.append(f"recorded with {was}, running {now}")
    parts += [f"{what} {a} -> {b}" for what, a, b in diffs if what in _ENV_KEYS]
    return "; ".join(parts)


_ENV_KEYS = ("device", "GPU", "machine", "threads")


def check_trust(command: str, params: dict, source: str, trust_model: bool, verb: str) -> None:
    """Refuse (one line, exit 2) to load a model that runs code of its own unless ``trust_model``;
    say what would be loaded, and how to allow it."""
    from cnnvis.models.registry import untrusted_code

    risky = []
    for key in MODEL_PARAMS:
        value = params.get(key)
        if isinstance(value, str) and (what := untrusted_code(value)):
            risky.append(what)
    if command == "convert-caffe":
        risky.append(f"the Caffe net '{params.get('prototxt')}'")
    if risky and not trust_model:
        raise InputError(
            f"'{source}' was made with {risky[0]}; {verb} would load it, and a file from elsewhere must not run code "
            f"unseen. If you trust it, run again with --trust-model"
        )


def relative_to(out: str, folder: str) -> str:
    """``out`` relative to ``folder`` when it lies inside it (as the recorded run printed it), else
    unchanged; a trailing separator (a folder output) is kept."""
    inside = os.path.relpath(out, folder)
    if inside.startswith(os.pardir) or os.path.isabs(inside):
        return out
    return inside + (os.sep if out.endswith(("/", os.sep)) else "")


def outputs_beside(params: dict, out: str) -> dict:
    """``params`` with every recorded output path moved beside ``out``: the replay writes ``out``
    and ``OUT_STEM.NAME`` for a recorded ``--video NAME`` (never the recorded path, which may name
    any file on this machine)."""
    params = dict(params, out=out)
    stem = os.path.splitext(out)[0]
    for key in OUTPUT_PARAMS:
        value = params.get(key)
        if key != "out" and isinstance(value, str) and value:
            params[key] = f"{stem}.{os.path.basename(os.path.normpath(value))}"
    return params


def check_shape(manifest: dict, source: str) -> None:
    """Raise InputError unless the fields replay reads have the types cnnvis writes: a manifest is
    a stranger's data, and a wrong type must be one line, not a traceback."""
    kinds = {
        "params": dict,
        "inputs": dict,
        "versions": dict,
        "device": dict,
        "cwd": str,
        "output_label": str,
        "output_role": str,
        "command": str,
    }
    for key, kind in kinds.items():
        value = manifest.get(key)
        if value is not None and not isinstance(value, kind):
            raise InputError(
                f"the manifest of '{source}' has {key} of type {type(value).__name__}, expected {kind.__name__}; "
                "it was edited or made by another program"
            )
    for name, rec in (manifest.get("inputs") or {}).items():
        if not (isinstance(rec, dict) and isinstance(rec.get("path"), str) and isinstance(rec.get("sha256"), str)):
            raise InputError(
                f"the manifest of '{source}' records input '{name}' without a path and a SHA-256; it was edited"
            )
    label = manifest.get("output_label")
    if label is not None and not LABEL_CHARS.match(label):
        raise InputError(
            f"the manifest of '{source}' has output label {label[:40]!r}, which is not a plain name; it was edited"
        )


def recorded_threads(manifest: dict) -> int | None:
    threads = (manifest.get("device") or {}).get("threads")
    return (
        threads if isinstance(threads, int) and not isinstance(threads, bool) and 1 <= threads <= MAX_THREADS else None
    )


def read_checkpoint(path: str) -> dict:
    """A checkpoint written by an interrupted or checkpointing run; InputError if it is not one."""
    from cnnvis.io.checkpoint import CHECKPOINT_FORMAT, load_sealed

    ck = load_sealed(
        path,
        "checkpoint",
        "it is truncated or not a cnnvis checkpoint",
        missing_fix="pass the NAME.ckpt an interrupted run wrote",
    )
    if (
        not isinstance(ck, dict)
        or ck.get("format") != CHECKPOINT_FORMAT
        or not isinstance(ck.get("state"), dict)
        or not isinstance(ck.get("manifest"), dict)
    ):
        raise InputError(
            f"'{path}' is not a cnnvis render checkpoint (format {CHECKPOINT_FORMAT}); pass the NAME.ckpt of dream, "
            "invert or prefer"
        )
    return ck
