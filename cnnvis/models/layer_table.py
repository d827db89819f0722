"""A model's layer table: every layer's name and output shape at the model's input size, without torch.

The checks that need only this table (an unknown layer, a channel out of range, a neuron off the
map) answer from a table shipped for the built-in models, in well under a second, instead of after
importing torch and building the network (6-8 s). The same functions make the messages of the
checks done on the loaded model, so both say the same thing. ``scripts/layer_tables.py`` writes the
shipped tables and ``tests/models/test_layer_table.py`` checks them against the live networks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources

from cnnvis.errors import InputError, did_you_mean

# Table files are named after the model; only plain registry names have one (never a path).
_TABLE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*\Z")


@dataclass(frozen=True)
class LayerTable:
    """``shapes``: layer name -> output shape without batch ((C, H, W), (C,) ...) at ``input_size``
    x ``input_size`` pixels, in the order of ``named_modules()``; layers that return no single
    tensor are absent from ``shapes`` but listed in ``names``."""

    model: str
    input_size: int
    names: tuple[str, ...]
    shapes: dict[str, tuple[int, ...]]

    def check_layers(self, layers: Iterable[str]) -> None:
        """Raise :class:`InputError` naming the first layer this model does not have."""
        check_layer_names(self.names, layers, self.model)

    def check_channel(self, layer: str, channel: int) -> None:
        """Raise :class:`InputError` when ``layer`` has no channel ``channel``."""
        shape = self.shapes.get(layer)
        if shape:
            check_channel(channel, shape[0], f"layer '{layer}'")

    def grid(self, layer: str) -> tuple[int, int] | None:
        """(H, W) of ``layer``'s map at the input size, or None when it is not a (C, H, W) map."""
        shape = self.shapes.get(layer, ())
        return (shape[1], shape[2]) if len(shape) == 3 else None

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "input_size": self.input_size,
            "layers": [[n, self.shapes.get(n)] for n in self.names],
        }


def check_layer_names(names: Sequence[str], layers: Iterable[str], model_name: str) -> None:
    """Raise :class:`InputError` naming the first of ``layers`` not in ``names``, with a close match
    and the listing command."""
    known = set(names)
    for layer in layers:
        if layer not in known:
            raise InputError(
                f"unknown layer '{layer}' for {model_name}{did_you_mean(layer, names)} "
                f"(run: cnnvis layers {model_name})"
            )


def check_channel(channel: int, count: int, where: str) -> None:
    """Raise :class:`InputError` unless 0 <= ``channel`` < ``count``, the channels of ``where``
    (``layer 'blocks.5'``)."""
    if not 0 <= channel < count:
        raise InputError(f"channel {channel} is out of range for {where} with {count} channels; use 0..{count - 1}")


def table_from_json(data: dict) -> LayerTable:
    """The table of a parsed table file (what :meth:`LayerTable.to_json` wrote)."""
    rows = [(str(name), tuple(shape) if shape else None) for name, shape in data["layers"]]
    return LayerTable(
        model=str(data["model"]),
        input_size=int(data["input_size"]),
        names=tuple(name for name, _ in rows),
        shapes={name: shape for name, shape in rows if shape},
    )


def shipped_table(model: str) -> LayerTable | None:
    """The table shipped for the built-in ``model`` (``efficientnet-lite0``), or None: another
    model's layers are only known once it is loaded."""
    if not _TABLE_NAME.match(model):
        return None
    path = resources.files("cnnvis") / "data" / "layers" / f"{model}.json"
    if not path.is_file():
        return None
    return table_from_json(json.loads(path.read_text()))
