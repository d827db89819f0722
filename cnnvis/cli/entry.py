"""The ``cnnvis`` executable: takes over Ctrl-C and SIGTERM first, then loads the command line.

Importing click, torch and the rest takes a moment; a Ctrl-C in it would otherwise print a
traceback from inside an import. Here a first signal only sets the flag of
:mod:`cnnvis.cli.interrupts`, which the command honours before its first step, and the process
exits 130 (Ctrl-C) or 143 (SIGTERM) with one line.
"""

from __future__ import annotations

import sys

from cnnvis.cli import interrupts


def _stopped() -> None:
    sys.stderr.write("interrupted before the first step; nothing written\n")
    sys.exit(interrupts.exit_code())


def run() -> None:
    """Console-script entry point (``cnnvis = cnnvis.cli.entry:run``)."""
    with interrupts.DeferredInterrupt():
        try:
            from cnnvis.cli.commands import main

            interrupts.raise_if_asked()
            main()
        except KeyboardInterrupt:
            _stopped()


if __name__ == "__main__":  # pragma: no cover
    run()
