"""Unit lists on the command line: ``--channel 5``, ``--channel 0,5,9``, ``--channel 0-15,20``.

A list renders as one batch, one image per unit (see :class:`cnnvis.pipeline.loop.Render`'s
``batch``); the outputs are ``NAME_c5.png`` for each channel plus a contact sheet.
"""

from __future__ import annotations

import click

MAX_UNITS = 4096  # a list longer than any layer is a typo (e.g. 0-99999)


def parse_units(text) -> list[int]:
    """``"0,5,9"`` / ``"0-15"`` / ``"0-3,8"`` / an int / a list of ints -> distinct ints, in order.

    Raises ValueError naming the bad part."""
    if isinstance(text, bool):
        raise ValueError(f"expected channel numbers, got {text!r}")
    if isinstance(text, int):
        return [text]
    if isinstance(text, (list, tuple)):
        return [u for item in text for u in parse_units(item)]
    units: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise ValueError(f"'{part}' is not a channel number or range; write e.g. 5, 0,5,9 or 0-15") from None
        if b < a:
            raise ValueError(f"range '{part}' runs backwards; write it as {b}-{a}")
        units.extend(range(a, b + 1))
        if len(units) > MAX_UNITS:
            raise ValueError(f"'{text}' names more than {MAX_UNITS} channels; give a shorter range")
    if not units:
        raise ValueError(f"'{text}' names no channel; write e.g. 5, 0,5,9 or 0-15")
    return list(dict.fromkeys(units))


class UnitList(click.ParamType):
    """A click type for :func:`parse_units`; converts to a list of ints (presets may give an int)."""

    name = "C[,C|A-B...]"

    def convert(self, value, param, ctx):
        try:
            return parse_units(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


UNITS = UnitList()


def unit_label(channel: int) -> str:
    """The file-name label of a channel's image: ``c5``."""
    return f"c{channel}"
