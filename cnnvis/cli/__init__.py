"""The command line: every click command, progress bar, preset and job. The only package that
imports click or tqdm; the library below it never prints and never writes files."""

from cnnvis.cli.main import main

__all__ = ["main"]
