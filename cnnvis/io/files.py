"""Files written atomically, and torch files read safely (tensors and plain containers, never code).

Every file cnnvis writes goes through :func:`write_atomic`: it is written to a hidden temporary
beside its name, flushed to the disk, then renamed into place, so a reader never sees half a file
and a failed or killed write leaves the earlier file intact. A write that fails (a full disk, a
file-size limit, a read-only or forbidden folder) raises :class:`~cnnvis.errors.OutputError`, one
line naming the file, what went wrong and the fix, and leaves no temporary behind. A process killed
mid-write (``kill -9``) cannot remove its temporary: the next write into that folder does
(:func:`sweep_temporaries`), so a rerun leaves no stray files either.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import tempfile
import time

from cnnvis.errors import InputError, OutputError

# A temporary is ".NAME.RANDOM~cnnvis~HOST~PID.EXT": its writer (host and process) is in its
# name, so a later run can tell a dead writer's leftover from a live one's file in progress (two
# runs may share a folder, an atlas on a cluster even across hosts).
_TEMP_TAG = "~cnnvis~"
_TEMP_RE = re.compile(r"^\..*~cnnvis~(?P<host>[A-Za-z0-9_-]*)~(?P<pid>\d+)(\.[^.]*)?$")
# A temporary this old is stale whoever wrote it (a host that is gone cannot be asked).
STALE_SECONDS = 24 * 3600
_swept: set[str] = set()

_WRITE_FIXES = {
    errno.ENOSPC: "free some space on that disk (or choose another --out) and run the command again",
    errno.EDQUOT: "free some of your disk quota (or choose another --out) and run the command again",
    errno.EFBIG: "raise the file-size limit (ulimit -f) or write to a filesystem that allows larger files",
    errno.EROFS: "the filesystem is read-only: choose an --out on a writable one",
    errno.EACCES: "choose an --out in a folder you may write to, or change its permissions",
    errno.EPERM: "choose an --out in a folder you may write to, or change its permissions",
    errno.ENOENT: "its folder does not exist (any more): create it or choose another --out",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another --out",
    errno.EISDIR: "it is a folder: give a file name",
    errno.EIO: "the disk reported an I/O error: check it, or choose another --out",
}
WRITE_ERRNOS = frozenset(_WRITE_FIXES)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:40] or "host"


def temporary_beside(path: str) -> str:
    """Create an empty hidden temporary file beside ``path`` and return its name
    (``.NAME.RANDOM~cnnvis~HOST~PID.EXT``: the extension stays last, for writers that go by it)."""
    d = os.path.dirname(os.path.abspath(path))
    stem, ext = os.path.splitext(os.path.basename(path))
    sweep_temporaries(d)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=f"{_TEMP_TAG}{_host()}~{os.getpid()}{ext}", dir=d)
    except OSError as e:
        raise write_error(path, e) from None
    os.close(fd)
    return tmp


def _writer_gone(host: str, pid: int) -> bool:
    if host != _host():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


def is_temporary(name: str) -> bool:
    """Whether the file name ``name`` is one of cnnvis's write temporaries (never an output)."""
    return _TEMP_RE.match(os.path.basename(name)) is not None


def sweep_temporaries(folder: str, force: bool = False) -> list[str]:
    """Remove the temporaries in ``folder`` whose writer is gone: a process of this host that no
    longer runs, or any writer's older than :data:`STALE_SECONDS`. Once per folder and process
    unless ``force``. Returns the removed paths."""
    folder = os.path.abspath(folder)
    if folder in _swept and not force:
        return []
    _swept.add(folder)
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    now = time.time()
    for name in names:
        m = _TEMP_RE.match(name)
        if m is None:
            continue
        path = os.path.join(folder, name)
        try:
            if _writer_gone(m["host"], int(m["pid"])) or now - os.stat(path).st_mtime > STALE_SECONDS:
                os.unlink(path)
                removed.append(path)
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError with an errno behind ``exc``: itself, or one in its cause/context chain (torch's
    writer reports a failed write as a RuntimeError whose context is the OSError)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno is not None:
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def write_error(path: str, exc: BaseException) -> OutputError | None:
    """The one-line :class:`OutputError` for a failed write of ``path``, or None if ``exc`` is
    not an operating-system write failure."""
    os_err = _os_error(exc)
    if os_err is None or os_err.errno not in WRITE_ERRNOS:
        return None
    what = os_err.strerror or errno.errorcode.get(os_err.errno, "error")
    name = errno.errorcode.get(os_err.errno, str(os_err.errno))
    return OutputError(f"cannot write '{path}': {what} ({name}); {_WRITE_FIXES[os_err.errno]}")


def _fsync(path: str) -> None:
    """Flush ``path`` to the disk: on filesystems that allocate late, a full disk shows here."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(tmp: str, path: str) -> None:
    """Give the finished temporary ``tmp`` a plain file's mode, flush it and rename it to ``path``."""
    # mkstemp makes the file private (0600); give it the mode a plain open() would have.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    _fsync(tmp)
    os.replace(tmp, path)


def _failed(paths_and_temps: list[tuple[str, str]], exc: BaseException) -> None:
    """Remove the temporaries of a failed write; raise its OutputError if it is one (else return)."""
    for _, tmp in paths_and_temps:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if isinstance(exc, (KeyboardInterrupt, InputError)):
        return
    err = write_error(paths_and_temps[-1][0], exc)
    if err is not None:
        raise err from None


def write_atomic(path: str, write) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place.

    A reader never sees a half-written file, and a failed or interrupted write leaves the old file
    intact and no temporary behind. Raises :class:`OutputError` when the operating system refuses
    the write (a full disk, a size limit, a read-only or forbidden folder)."""
    tmp = temporary_beside(path)
    try:
        write(tmp)
        publish(tmp, path)
    except BaseException as e:
        _failed([(path, tmp)], e)
        raise


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (:func:`write_atomic`)."""

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)

    write_atomic(path, write)


def write_pair(path: str, write, second: str, write_second) -> None:
    """Write ``path`` and ``second`` (in one folder) as a pair: ``write(tmp)``, then
    ``write_second(tmp_second, tmp)`` (it may read the first), then both renamed into place while
    the folder is locked, so that two runs writing the same pair at once leave one run's pair, not
    one file of each. Failures as in :func:`write_atomic`."""
    done: list[tuple[str, str]] = []
    try:
        done.append((path, temporary_beside(path)))
        write(done[0][1])
        done.append((second, temporary_beside(second)))
        write_second(done[1][1], done[0][1])
        with _folder_lock(os.path.dirname(os.path.abspath(path))):
            publish(done[0][1], path)
            publish(done[1][1], second)
    except BaseException as e:
        _failed(done or [(path, "")], e)
        raise


class _folder_lock:
    """An exclusive ``flock`` on a folder (Linux and macOS; elsewhere, and on filesystems without
    locks, no lock: the sidecar's SHA-256 still tells a mismatched pair on read)."""

    def __init__(self, folder: str):
        self.folder, self.fd = folder, None

    def __enter__(self):
        try:
            import fcntl

            self.fd = os.open(self.folder, os.O_RDONLY)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except (ImportError, OSError):
            if self.fd is not None:
                os.close(self.fd)
            self.fd = None
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the lock


def make_folder(path: str) -> None:
    """``os.makedirs(path, exist_ok=True)``, with a failure as one :class:`OutputError` line."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        err = write_error(path, e)
        if err is None:
            raise
        raise err from None


def check_folder_writable(folder: str, out: str) -> None:
    """Raise :class:`OutputError` unless a file can really be created in ``folder`` (for ``out``).

    Creates and removes a temporary: ``os.access`` says yes to root on a read-only mount and in
    ``/proc``, where the write would fail only at the end of the run."""
    tmp = temporary_beside(os.path.join(folder, os.path.basename(out) or "out"))
    os.unlink(tmp)


def save_torch(path: str, obj) -> None:
    """``torch.save(obj)`` to ``path`` atomically."""
    import torch

    def write(tmp: str) -> None:
        # A file object, not the path: torch's own writer turns a full disk into a RuntimeError
        # with no errno, while a Python file keeps the OSError in the exception's context.
        with open(tmp, "wb") as f:
            torch.save(obj, f)

    write_atomic(path, write)


def load_torch(path: str, what: str, fix: str, missing_fix: str | None = None, map_location="cpu"):
    """``torch.load(path, weights_only=True)`` (tensors and plain containers, never code).

    Raises InputError ``"{what} not found: 'PATH'; {missing_fix or fix}"`` for a missing file and
    ``"cannot read {what} 'PATH' (ErrorType); {fix}"`` for a truncated or foreign one.
    """
    import torch

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"{what} not found: '{path}'; {missing_fix or fix}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for a bad archive
        raise InputError(f"cannot read {what} '{path}' ({type(e).__name__}); {fix}") from None
