"""Ctrl-C and SIGTERM: one handler for every command, from start-up to the last write.

The first Ctrl-C (SIGINT), or a SIGTERM (what a cluster scheduler, ``timeout`` or ``systemctl
stop`` sends), only sets a flag. A command checks it where its state is whole: before its first
step (:func:`begin_work`; torch swallows a KeyboardInterrupt raised inside its own import, so a
signal that lands while loading must wait there), between steps, frames or batches
(:func:`asked`). There it writes what it has (the current image, a checkpoint) and exits with
:func:`exit_code`: 130 after SIGINT, 143 after SIGTERM. A second signal stops at once. A signal
the process was started with set to "ignore" (a job in the background, ``nohup``) stays ignored.
"""

from __future__ import annotations

import signal
import threading

from cnnvis.errors import EXIT_INTERRUPTED, EXIT_TERMINATED

_asked = threading.Event()
_received: list[int] = []  # the signals received since the outermost handler was installed
_depth = [0]


def _on_signal(sig, _frame) -> None:
    _received.append(sig)
    if _asked.is_set():
        raise KeyboardInterrupt  # a second signal: stop at once
    _asked.set()


def _take_over(sig: int) -> bool:
    """Whether to handle ``sig``: never one the process was told to ignore (SIG_IGN); SIGINT only
    at Python's default (a notebook or a test runner may handle it); SIGTERM also over a handler a
    library installed in this process (Ray's driver does), which would end the run unsaved."""
    current = signal.getsignal(sig)
    if sig == signal.SIGINT:
        return current is signal.default_int_handler
    return current is not signal.SIG_IGN and current is not None


class DeferredInterrupt:
    """Context manager: while it is open, a first SIGINT or SIGTERM only sets the flag that
    :func:`asked` reads. Nested uses share the outermost one's flag (``replay`` runs a command
    inside its own)."""

    def __enter__(self) -> DeferredInterrupt:
        self.old: dict[int, object] = {}
        _depth[0] += 1
        if _depth[0] > 1 or threading.current_thread() is not threading.main_thread():
            return self
        _asked.clear()
        _received.clear()
        for sig in (signal.SIGINT, signal.SIGTERM):
            if _take_over(sig):
                self.old[sig] = signal.signal(sig, _on_signal)
        return self

    def __exit__(self, *exc) -> None:
        _depth[0] -= 1
        for sig, old in self.old.items():
            signal.signal(sig, old)
        if _depth[0] == 0:
            _asked.clear()


def asked() -> bool:
    """Whether Ctrl-C or SIGTERM came since the command started: stop at the next whole state."""
    return _asked.is_set()


def exit_code() -> int:
    """The exit code of a run stopped by a signal: 143 after SIGTERM, else 130 (Ctrl-C)."""
    return EXIT_TERMINATED if signal.SIGTERM in _received else EXIT_INTERRUPTED


def raise_if_asked() -> None:
    """Raise KeyboardInterrupt if Ctrl-C or SIGTERM came since the command started."""
    if _asked.is_set():
        raise KeyboardInterrupt


def begin_work() -> None:
    """Loading is over: stop now if a signal came during it (nothing is written yet)."""
    raise_if_asked()
