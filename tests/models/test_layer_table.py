"""The layer tables shipped for the built-in models: they match the networks, and a bad layer, channel
or neuron position is answered from them before torch is imported, with the words of the check on the
loaded model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import invoke, subprocess_env

from cnnvis.models.capture import live_table
from cnnvis.models.layer_table import shipped_table
from cnnvis.models.options import ModelOptions
from cnnvis.models.registry import BUILT_IN_TABLES, load_model


@pytest.mark.parametrize("name", BUILT_IN_TABLES)
def test_the_shipped_table_is_the_networks(name):
    """A stale table would check against layers the network no longer has: rerun scripts/layer_tables.py."""
    m = load_model(name, weights="random")
    assert shipped_table(name) == live_table(m.module, name, m.input_size)


@pytest.mark.parametrize("name", ["../../etc/passwd", "timm:resnet18", "my.module:factory", "EfficientNet-Lite0", ""])
def test_only_plain_built_in_names_have_a_table(name):
    assert shipped_table(name) is None


BAD_FLAGS = [
    ["dream", "--layer", "blocks.9", "--out", "x.png"],
    ["dream", "--noise", "--layer", "blocks.5", "--channel", "0,192", "--out", "x.png"],
    ["dream", "--noise", "--layer", "blocks.5.0", "--channel", "17", "--x", "7", "--y", "3", "--out", "x.png"],
    ["prefer", "--layer", "blocks.4", "--channel", "5000", "--out", "x.png"],
    ["prefer", "--interpolate", "blocks.4:5:4200", "--batch", "3", "--out", "x.png"],
]

_WITHOUT_TORCH = """
import json, sys
from cnnvis.cli.commands import main
try:
    main(json.loads(sys.argv[1]))
except SystemExit as e:
    print(json.dumps({"code": e.code, "torch": "torch" in sys.modules}))
"""


@pytest.mark.parametrize("args", BAD_FLAGS, ids=lambda a: " ".join(a[:4]))
def test_a_bad_layer_channel_or_position_is_answered_before_torch_loads(args, tmp_path, monkeypatch):
    res = subprocess.run(
        [sys.executable, "-c", _WITHOUT_TORCH, json.dumps(args)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        cwd=tmp_path,
        timeout=120,
    )
    verdict = json.loads(res.stdout.strip().splitlines()[-1])
    assert verdict == {"code": 2, "torch": False}, res.stderr
    early = res.stderr.strip()
    assert early.startswith("Error: ") and len(early.splitlines()) == 1
    # the same flags with no table: the model loads and its own check says the same words
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ModelOptions, "layer_table", lambda self: None)
    late = invoke(args)
    assert late.exit_code == 2 and late.output.strip() == early, (late.output, late.exception)
