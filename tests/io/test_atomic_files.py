"""Atomic writes: failures as one line naming the file and the fix, no temporary left behind,
stale temporaries of dead writers swept, an image and its sidecar published as a pair; the seal
of checkpoints."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

from cnnvis.errors import InputError, OutputError
from cnnvis.io.checkpoint import digest, seal, verify
from cnnvis.io.files import (
    STALE_SECONDS,
    is_temporary,
    save_torch,
    sweep_temporaries,
    temporary_beside,
    write_atomic,
    write_error,
)


@pytest.mark.parametrize(
    "code, words",
    [
        (errno.ENOSPC, "free some space"),
        (errno.EFBIG, "ulimit -f"),
        (errno.EROFS, "read-only"),
        (errno.EACCES, "permissions"),
        (errno.EDQUOT, "quota"),
    ],
)
def test_write_errors_name_the_file_the_reason_and_the_fix(code, words):
    err = write_error("/x/out.png", OSError(code, os.strerror(code)))
    assert isinstance(err, OutputError) and isinstance(err, InputError)
    text = str(err)
    assert "'/x/out.png'" in text and errno.errorcode[code] in text and words in text and "\n" not in text


def test_a_write_error_behind_torchs_runtime_error_is_found():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos") from None
    except RuntimeError as e:
        wrapped = e
    wrapped.__context__ = OSError(errno.ENOSPC, "No space left on device")
    assert "ENOSPC" in str(write_error("a.ckpt", wrapped))
    assert write_error("a.ckpt", RuntimeError("a bug")) is None  # not a write failure: a real traceback


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")

    def fail(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError, match="ENOSPC"):
        write_atomic(str(path), fail)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]


def test_a_missing_folder_is_one_line(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        save_torch(str(tmp_path / "no" / "x.pt"), {"a": torch.zeros(2)})


def test_temporaries_carry_their_writer_and_keep_the_extension(tmp_path):
    tmp = temporary_beside(str(tmp_path / "unit_0001.png"))
    name = os.path.basename(tmp)
    assert name.startswith(".unit_0001.") and name.endswith(f"~{os.getpid()}.png") and is_temporary(name)
    assert not is_temporary("unit_0001.png") and not is_temporary(".unit_0001.ab12cd34.png")


def test_sweep_removes_only_temporaries_whose_writer_is_gone(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    mine = temporary_beside(str(tmp_path / "a.png"))  # this process: alive
    host = os.path.basename(mine).split("~")[2]
    gone = tmp_path / f".b.x1y2z3w4~cnnvis~{host}~{dead_pid}.png"
    elsewhere = tmp_path / f".c.x1y2z3w4~cnnvis~otherhost~{dead_pid}.png"
    old = tmp_path / f".d.x1y2z3w4~cnnvis~otherhost~{dead_pid}.png"
    for p in (gone, elsewhere, old):
        p.write_bytes(b"x")
    os.utime(old, (time.time() - STALE_SECONDS - 10,) * 2)
    keep = tmp_path / "b.png"
    keep.write_bytes(b"x")
    removed = sweep_temporaries(str(tmp_path), force=True)
    assert sorted(map(os.path.basename, removed)) == sorted([gone.name, old.name])
    assert os.path.exists(mine) and elsewhere.exists() and keep.exists()


def test_two_writers_of_one_image_leave_a_matching_pair(tmp_path):
    """Two threads (separate descriptors: flock excludes them as it does two processes) write the
    same JPEG with different pictures and manifests; whatever is left, its sidecar describes it."""
    from cnnvis.io.images import save_image
    from cnnvis.io.manifest import FORMAT, read_manifest

    path = str(tmp_path / "x.jpg")
    pictures = [np.full((64, 64, 3), v, np.uint8) for v in (0, 255)]

    def writer(i):
        for _ in range(15):
            save_image(path, pictures[i], {"format": FORMAT, "writer": i})

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    from PIL import Image

    with Image.open(path) as im:
        value = int(np.asarray(im).mean() > 127)
    assert read_manifest(path)["writer"] == value
    assert not [n for n in os.listdir(tmp_path) if is_temporary(n)]


def test_the_seal_covers_every_tensor_and_value():
    ck = {
        "format": "f",
        "state": {
            "canvas": torch.rand(2, 3),
            "step": 4,
            "rng": torch.zeros(5, dtype=torch.uint8),
            "parts": [torch.ones(1, dtype=torch.bfloat16)],
        },
        "manifest": {"a": [1, 2]},
    }
    sealed = seal(ck)
    verify(sealed, "x.ckpt")
    assert digest(sealed) == sealed["sha256"] == digest(ck)
    for change in (
        lambda c: c["state"]["canvas"].__setitem__((0, 0), 9.0),
        lambda c: c["state"].__setitem__("step", 5),
        lambda c: c["manifest"]["a"].append(3),
        lambda c: c["state"]["parts"][0].add_(1),
    ):
        copy = {
            "format": "f",
            "sha256": sealed["sha256"],
            "manifest": {"a": [1, 2]},
            "state": {
                k: (v.clone() if isinstance(v, torch.Tensor) else [t.clone() for t in v] if isinstance(v, list) else v)
                for k, v in ck["state"].items()
            },
        }
        change(copy)
        with pytest.raises(InputError, match="is damaged"):
            verify(copy, "x.ckpt")
    verify(ck, "old.ckpt")  # no seal: a checkpoint of an earlier version passes
