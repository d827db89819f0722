"""The one exception type the CLI turns into a one-line message with exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

EXIT_BAD_INPUT = 2  # the CLI's exit code for an InputError
EXIT_INTERRUPTED = 130  # the CLI's exit code after Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143  # the CLI's exit code after SIGTERM (128 + SIGTERM): a scheduler, timeout or systemctl stop


class InputError(ValueError):
    """Bad input from a user: the message names the bad value and the fix, on one line.

    A subclass of ``ValueError`` so that library callers can catch either; the CLI
    catches only this type, so genuine bugs still show their traceback.
    """


class OutputError(InputError):
    """A file could not be written (a full disk, a size limit, a read-only or forbidden folder):
    one line naming the file, the reason and the fix, like any bad input (exit code 2)."""


def did_you_mean(value: str, choices: Iterable[str], n: int = 1) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest choice, or ``""`` if none is close."""
    matches = difflib.get_close_matches(value, list(choices), n=n, cutoff=0.6)
    if not matches:
        return ""
    return "; did you mean " + " or ".join(f"'{m}'" for m in matches) + "?"
