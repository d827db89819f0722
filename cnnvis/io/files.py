"""Files written atomically, and torch files read safely (tensors and plain containers, never code)."""

from __future__ import annotations

import os
import tempfile

import torch

from cnnvis.errors import InputError


def write_atomic(path: str, write) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place.

    A reader never sees a half-written file, and an interrupted write leaves the old file intact.
    """
    d = os.path.dirname(os.path.abspath(path))
    stem, ext = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=ext, dir=d)
    os.close(fd)
    try:
        write(tmp)
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_torch(path: str, obj) -> None:
    """``torch.save(obj)`` to ``path`` atomically."""
    write_atomic(path, lambda tmp: torch.save(obj, tmp))


def load_torch(path: str, what: str, fix: str, missing_fix: str | None = None, map_location="cpu"):
    """``torch.load(path, weights_only=True)`` (tensors and plain containers, never code).

    Raises InputError ``"{what} not found: 'PATH'; {missing_fix or fix}"`` for a missing file and
    ``"cannot read {what} 'PATH' (ErrorType); {fix}"`` for a truncated or foreign one.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"{what} not found: '{path}'; {missing_fix or fix}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for a bad archive
        raise InputError(f"cannot read {what} '{path}' ({type(e).__name__}); {fix}") from None
