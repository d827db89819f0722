"""Unit lists on the command line (``--channel 0,5,9``, ``0-15,20``): the click type over
:func:`cnnvis.recipes.units.parse_units`."""

from __future__ import annotations

import click

from cnnvis.recipes.units import parse_units


class UnitList(click.ParamType):
    """A click type for :func:`parse_units`; converts to a list of ints (presets may give an int)."""

    name = "C[,C|A-B...]"

    def convert(self, value, param, ctx):
        try:
            return parse_units(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


UNITS = UnitList()
