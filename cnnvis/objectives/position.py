"""A position on a layer's feature map that means the same place at every size of a run.

A neuron's ``x``/``y`` are given on the map of one full tile (the layer's map at the model's input
size, what ``cnnvis layers`` prints) and taken at the same relative place on the smaller maps of
the early octaves, so ``--x 3 --y 3`` on a 7x7 map is its centre at every octave.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnvis.errors import InputError


@dataclass(frozen=True)
class MapPosition:
    """Column ``x`` and row ``y`` (None: the centre) on a map of ``grid`` (H, W) cells.

    Without ``grid`` the indices address every tile's map as they are (the map must hold them).
    """

    x: int | None = None
    y: int | None = None
    grid: tuple[int, int] | None = None

    def at(self, h: int, w: int) -> tuple[int, int]:
        """(row, column) on an ``h`` x ``w`` map: the same relative place as on ``grid``."""
        return _scaled(self.y, h, None if self.grid is None else self.grid[0]), _scaled(
            self.x, w, None if self.grid is None else self.grid[1]
        )

    def check(self, layer: str, h: int, w: int, what: str = "neuron position") -> None:
        """Raise :class:`InputError` (one line) when the position is off the map it is given on."""
        gh, gw = self.grid if self.grid is not None else (h, w)
        y, x = (gh // 2 if self.y is None else self.y), (gw // 2 if self.x is None else self.x)
        if 0 <= y < gh and 0 <= x < gw:
            return
        where = "at the model's input size (a full tile)" if self.grid is not None else "per tile"
        raise InputError(
            f"{what} x={x}, y={y} is outside layer '{layer}' whose map is {gw}x{gh} {where}; "
            f"use 0 <= x < {gw}, 0 <= y < {gh}"
        )


def _scaled(pos: int | None, n: int, full: int | None) -> int:
    """Index into ``n`` cells of position ``pos`` given on ``full`` cells (cell centres aligned)."""
    if pos is None:
        return n // 2
    if full is None or full == n:
        return pos
    return min(n - 1, max(0, int((pos + 0.5) * n / full)))
