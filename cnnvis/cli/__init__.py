"""The command line: every click command, progress bar, preset and job. The only package that
imports click or tqdm; the library below it never prints and never writes files.

``main`` (the click group) is imported on first use, so that :mod:`cnnvis.cli.entry` can take
over Ctrl-C and SIGTERM before click and torch load.
"""

from __future__ import annotations

__all__ = ["main"]


def __getattr__(name: str):
    if name == "main":
        from cnnvis.cli.commands import main

        globals()["main"] = main  # later lookups skip __getattr__
        return main
    raise AttributeError(f"module 'cnnvis.cli' has no attribute '{name}'")
