"""Ctrl-C while a command loads (imports, weights, probes), before its first step.

torch swallows a KeyboardInterrupt raised inside its own import (``from torch._C import *``):
a Ctrl-C that lands there would be lost and the run would go on to the end. So from the start
of a command a first Ctrl-C only sets a flag, which the command checks before its first step
(:func:`raise_if_asked`); a second Ctrl-C stops at once. A SIGINT the process was started
with set to "ignore" (a job in the background) stays ignored.
"""

from __future__ import annotations

import signal
import threading

_asked = threading.Event()


def _on_sigint(_sig, _frame) -> None:
    if _asked.is_set():
        raise KeyboardInterrupt  # a second Ctrl-C: stop at once
    _asked.set()


class DeferredInterrupt:
    """Context manager: defer the first Ctrl-C to :func:`raise_if_asked` while the command runs."""

    def __enter__(self) -> DeferredInterrupt:
        self.old = None
        _asked.clear()
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self.old = signal.signal(signal.SIGINT, _on_sigint)
        return self

    def __exit__(self, *exc) -> None:
        if self.old is not None:
            signal.signal(signal.SIGINT, self.old)
        _asked.clear()


def asked() -> bool:
    """Whether Ctrl-C was pressed since the command started (for commands that stop between
    batches of work rather than before their first step)."""
    return _asked.is_set()


def raise_if_asked() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed since the command started."""
    if _asked.is_set():
        _asked.clear()
        raise KeyboardInterrupt


def begin_work() -> None:
    """Loading is over: stop now if Ctrl-C was pressed during it, else let Ctrl-C raise
    KeyboardInterrupt again (for commands that handle it themselves, frame by frame)."""
    raise_if_asked()
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is _on_sigint:
        signal.signal(signal.SIGINT, signal.default_int_handler)
