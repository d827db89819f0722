"""Write the layer tables shipped for the built-in models: ``cnnvis/data/layers/NAME.json``.

Each holds every layer's name and output shape at the model's input size, so that a bad
``--layer``/``--channel``/``--x``/``--y`` is answered before torch is imported (see
:mod:`cnnvis.models.layer_table`). The architecture does not depend on the weights, so the tables
are made with random weights. Run after changing how a built-in model is built::

    python scripts/layer_tables.py
"""

from __future__ import annotations

import json
import os

from cnnvis.io.files import write_atomic
from cnnvis.models.capture import live_table
from cnnvis.models.registry import BUILT_IN_TABLES, load_model

HERE = os.path.dirname(os.path.abspath(__file__))
FOLDER = os.path.join(HERE, os.pardir, "cnnvis", "data", "layers")


def main() -> None:
    os.makedirs(FOLDER, exist_ok=True)
    for name in BUILT_IN_TABLES:
        m = load_model(name, weights="random")
        table = live_table(m.module, name, m.input_size)
        path = os.path.join(FOLDER, f"{name}.json")
        text = json.dumps(table.to_json(), separators=(",", ":")) + "\n"
        write_atomic(path, lambda tmp, text=text: open(tmp, "w").write(text))
        print(f"wrote {os.path.relpath(path)} ({len(table.names)} layers)")


if __name__ == "__main__":
    main()
