"""A checkpoint's seal: the SHA-256 of everything it holds, checked before a run goes on from it.

A checkpoint whose floats were damaged (a bad disk, a bad copy, a hand edit) would otherwise load
without complaint and resume into a different picture. The digest covers every tensor's dtype,
shape and bytes, and every other value, in a fixed order, so it does not depend on how
``torch.save`` laid the archive out.
"""

from __future__ import annotations

import hashlib
import json
import os

from cnnvis.errors import InputError

DIGEST_KEY = "sha256"
# The format of a render checkpoint (NAME.ckpt of dream, invert and prefer), checked on resume.
CHECKPOINT_FORMAT = "cnnvis-checkpoint/1"


def checkpoint_path(out: str) -> str:
    """Where the checkpoint of a render writing ``out`` lives: ``dir/name.png`` -> ``dir/name.ckpt``,
    ``clip.mp4`` -> ``clip.ckpt``, a folder of frames ``frames/`` -> ``frames.ckpt``."""
    return os.path.splitext(out.rstrip("/" + os.sep) or out)[0] + ".ckpt"


def remove_checkpoint(path: str) -> None:
    """Drop a spent (or stale) checkpoint, if there is one."""
    if os.path.exists(path):
        os.remove(path)


def _feed(h, value) -> None:
    import torch

    if isinstance(value, torch.Tensor):
        t = value.detach().to("cpu").contiguous()
        h.update(f"tensor {t.dtype} {tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    elif isinstance(value, dict):
        h.update(f"dict {len(value)};".encode())
        for key in sorted(value, key=repr):
            h.update(repr(key).encode() + b"=")
            _feed(h, value[key])
    elif isinstance(value, (list, tuple)):
        h.update(f"{type(value).__name__} {len(value)};".encode())
        for item in value:
            _feed(h, item)
    else:
        h.update(json.dumps(value, sort_keys=True, default=repr).encode() + b";")


def digest(checkpoint: dict) -> str:
    """The SHA-256 (hex) of every entry of ``checkpoint`` but the digest itself."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in checkpoint.items() if k != DIGEST_KEY})
    return h.hexdigest()


def seal(checkpoint: dict) -> dict:
    """``checkpoint`` with its digest added (what :func:`verify` checks)."""
    return {**checkpoint, DIGEST_KEY: digest(checkpoint)}


def save_sealed(path: str, checkpoint: dict) -> None:
    """Write ``checkpoint`` with its seal to ``path``, atomically."""
    from cnnvis.io.files import save_torch

    save_torch(path, seal(checkpoint))


def load_sealed(path: str, what: str, fix: str, missing_fix: str | None = None, map_location="cpu"):
    """Read a checkpoint written by :func:`save_sealed` (tensors and plain containers, never code)
    and check its seal; InputError as :func:`cnnvis.io.files.load_torch` says, or if it is damaged."""
    from cnnvis.io.files import load_torch

    checkpoint = load_torch(path, what, fix, missing_fix=missing_fix, map_location=map_location)
    if isinstance(checkpoint, dict):
        verify(checkpoint, path)
    return checkpoint


def verify(checkpoint: dict, path: str) -> None:
    """Raise InputError unless ``checkpoint`` (read from ``path``) still has the digest it was
    written with. Checkpoints of cnnvis versions before the seal carry none and pass."""
    recorded = checkpoint.get(DIGEST_KEY)
    if recorded is None:
        return
    if recorded != digest(checkpoint):
        raise InputError(
            f"checkpoint '{path}' is damaged: its contents no longer match the SHA-256 it was written with; "
            "delete it and run the command again from the start"
        )
