"""Checks every command makes before it starts: nothing it writes may be one of its inputs.

``cnnvis dream small.png --out small.png`` would replace the photo with its dream, and replay
could then never run again (the input's SHA-256 changed). The same holds for a video, a progress
video, a frame folder and the checkpoint or sidecar an output brings. Symlinks, hard links and
``./`` spellings name the same file and count as such.
"""

from __future__ import annotations

import os

from cnnvis.errors import InputError
from cnnvis.io.manifest import OUTPUT_PARAMS, input_paths, sidecar_path


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


def written_paths(params: dict) -> list[tuple[str, str, bool]]:
    """(parameter, path, derived) for each file a command with ``params`` may write: its outputs, and
    beside each (derived) its checkpoint ``NAME.ckpt``, its sidecar and its ``NAME.interrupted.EXT``."""
    found = []
    for key in OUTPUT_PARAMS:
        value = params.get(key)
        if not isinstance(value, str) or not value:
            continue
        path = value.rstrip("/" + os.sep) or value  # a frame folder's checkpoint is FOLDER.ckpt
        stem, ext = os.path.splitext(path)
        found += [(key, path, False)]
        found += [(key, p, True) for p in (stem + ".ckpt", sidecar_path(path), f"{stem}.interrupted{ext}")]
    return found


def check_outputs_are_not_inputs(params: dict) -> None:
    """Raise InputError if a file the command would write is one of its input files."""
    inputs = input_paths(params)
    if not inputs:
        return
    for out_key, out, derived in written_paths(params):
        for key, path in inputs.items():
            if derived and key == "checkpoint":
                continue  # resume: the run it finishes writes that checkpoint, and removes it when done
            if _same_file(out, path):
                name = key.split("[")[0]
                what = "the input" if name in ("image", "image_arg") else f"the input of {name}"
                flag = "--" + out_key.replace("_", "-")
                raise InputError(
                    f"{flag} '{params[out_key]}' would overwrite {what} '{path}'; "
                    f"choose another {flag} (inputs are never outputs)"
                )
