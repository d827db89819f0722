"""Video files in: which paths are videos, and their frames and frame rate through imageio."""

from __future__ import annotations

import os

from cnnvis.errors import InputError

VIDEO_SUFFIXES = (".mp4", ".gif", ".avi", ".mov", ".mkv", ".webm")


def is_video(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in VIDEO_SUFFIXES


def read_frames(path: str):
    """``(fps, iterator of uint8 (H, W, 3) frames)``; InputError for a missing or unreadable file."""
    import imageio.v3 as iio

    if not os.path.exists(path):
        raise InputError(f"video '{path}' does not exist; check the path")
    try:
        meta = iio.immeta(path)
        fps = meta.get("fps") or (1000 / meta["duration"] if meta.get("duration") else 10.0)
        return float(fps), iio.imiter(path)
    except Exception as e:  # imageio raises plugin-specific types for corrupt files
        raise InputError(f"cannot read video '{path}' ({type(e).__name__}); give an .mp4 or .gif readable by imageio-ffmpeg") from None
