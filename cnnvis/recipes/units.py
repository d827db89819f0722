"""Units of a layer, as users name them: channel lists (``5``, ``0,5,9``, ``0-15,20``), file
labels (``c5``) and the feature mask of one unit, written once for every command.

A list renders as one batch, one image per unit (see :class:`cnnvis.pipeline.loop.Render`'s
``batch``); the outputs are ``NAME_c5.png`` for each channel plus a contact sheet.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cnnvis.errors import InputError
from cnnvis.models.layer_table import check_channel

MAX_UNITS = 4096  # a list longer than any layer is a typo (e.g. 0-99999)


def parse_units(text) -> list[int]:
    """``"0,5,9"`` / ``"0-15"`` / ``"0-3,8"`` / an int / a list of ints -> distinct ints, in order.

    Raises ValueError naming the bad part."""
    if isinstance(text, bool):
        raise ValueError(f"expected channel numbers, got {text!r}")
    if isinstance(text, int):
        return [text]
    if isinstance(text, (list, tuple)):
        return list(dict.fromkeys(u for item in text for u in parse_units(item)))
    units: list[int] = []
    for part in str(text).split(","):
        units.extend(_range(part.strip()))
        if len(units) > MAX_UNITS:
            raise ValueError(f"'{text}' names more than {MAX_UNITS} channels; give a shorter range")
    if not units:
        raise ValueError(f"'{text}' names no channel; write e.g. 5, 0,5,9 or 0-15")
    return list(dict.fromkeys(units))


def units_text(units: Sequence[int]) -> str:
    """The shortest ``--units`` text of ``units`` that :func:`parse_units` reads back in the same
    order: runs of consecutive numbers as ``A-B`` (``[0, 1, 2, 7]`` -> ``"0-2,7"``)."""
    parts: list[str] = []
    i = 0
    while i < len(units):
        j = i
        while j + 1 < len(units) and units[j + 1] == units[j] + 1:
            j += 1
        parts.append(str(units[i]) if j == i else f"{units[i]}-{units[j]}")
        i = j + 1
    return ",".join(parts)


def _range(part: str) -> range:
    """``"5"`` or ``"0-15"`` -> the channels it names (empty for an empty part)."""
    if not part:
        return range(0)
    lo, sep, hi = part.partition("-")
    try:
        a = int(lo)
        b = int(hi) if sep else a
    except ValueError:
        raise ValueError(f"'{part}' is not a channel number or range; write e.g. 5, 0,5,9 or 0-15") from None
    if b < a:
        raise ValueError(f"range '{part}' runs backwards; write it as {b}-{a}")
    return range(a, b + 1)


def parse_channels(channel) -> list[int]:
    """``--channel`` as a list (empty for None); a bad value is one :class:`InputError` line."""
    if channel is None:
        return []
    try:
        return parse_units(channel)
    except ValueError as e:
        raise InputError(f"bad --channel: {e}") from None


def unit_label(channel: int) -> str:
    """The file-name label of a channel's image: ``c5``."""
    return f"c{channel}"


def one_unit_mask(
    shape: Sequence[int],
    channel: int,
    x: int | None = None,
    y: int | None = None,
    *,
    whole_channel: bool = False,
    layer: str = "",
) -> np.ndarray:
    """The feature mask of one unit of a layer whose activations (without batch) have ``shape``:
    channel ``channel`` at (y, x) (default: the centre), the whole channel (``whole_channel``; the
    mask is then (C,), broadcast over positions), or unit ``channel`` of a fully connected layer.

    Returns float32 zeros with a single 1 (or one channel of 1s). ``layer`` names the layer in
    errors."""
    shape = tuple(shape)
    where = f"layer '{layer}'" if layer else "the layer"
    check_channel(channel, shape[0], where)
    if whole_channel or len(shape) == 1:
        mask = np.zeros(shape[:1], np.float32)
        mask[channel] = 1
        return mask
    h, w = shape[1], shape[2]
    yy, xx = (h // 2 if y is None else y), (w // 2 if x is None else x)
    if not (0 <= yy < h and 0 <= xx < w):
        raise InputError(
            f"unit position x={xx}, y={yy} is outside {where} whose map is {w}x{h}; use 0 <= x < {w}, 0 <= y < {h}"
        )
    mask = np.zeros(shape, np.float32)
    mask[(channel, yy, xx) + (0,) * (len(shape) - 3)] = 1
    return mask
