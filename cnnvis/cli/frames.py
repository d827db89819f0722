"""Frame-by-frame processing of videos for ``dream`` and ``invert``: read, apply, write, report.

The PyTorch iCNN reconstructs movies one frame at a time; here any per-frame function does,
and it sees the previous frame's result so it can start from it (temporal coherence).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import click
import numpy as np

from cnnvis.cli.interrupts import begin_work
from cnnvis.cli.recording import current_manifest
from cnnvis.errors import EXIT_INTERRUPTED, InputError
from cnnvis.io.images import check_video_path, save_video, to_float_rgb
from cnnvis.io.manifest import write_sidecar
from cnnvis.io.video import read_frames


def map_frames(src: str, out: str, fn: Callable[[int, np.ndarray, np.ndarray | None], np.ndarray], quiet: bool = False,
               describe: Callable[[int, np.ndarray, np.ndarray], str] | None = None) -> int:
    """Apply ``fn(index, frame, previous_result)`` to every frame of ``src`` and write ``out``.

    Frames arrive as float32 (H, W, 3) in [0, 1]; ``fn`` returns the same kind. Ctrl-C writes
    the frames done so far to ``NAME.interrupted.EXT`` and returns 130. Returns the exit code.
    """

    check_video_path(out)
    fps, frames = read_frames(src)
    done: list[np.ndarray] = []
    prev = None
    stem, ext = os.path.splitext(out)
    begin_work()
    try:
        for i, frame in enumerate(frames):
            x = to_float_rgb(np.asarray(frame))
            y = fn(i, x, prev)
            prev = y
            done.append((np.clip(y, 0, 1) * 255).round().astype(np.uint8))
            if not quiet:
                click.echo(f"frame {i + 1}" + (f": {describe(i, x, y)}" if describe else ""))
    except KeyboardInterrupt:
        if done:
            path = f"{stem}.interrupted{ext}"
            save_video(path, done, fps=fps)
            click.echo(f"interrupted: {len(done)} frames written to {path}")
        return EXIT_INTERRUPTED
    if not done:
        raise InputError(f"video '{src}' has no frames")
    save_video(out, done, fps=fps)
    manifest = current_manifest()
    if manifest is not None:
        write_sidecar(out, manifest)  # a video has no text chunk: the sidecar only
    if not quiet:
        click.echo(f"wrote {out} ({len(done)} frames)")
    return 0
