"""A kind owns what is known about it: a parameterization or an optimizer registered by a module
of its own (here a throwaway one, written by the test) renders through the real CLI, with no
other file naming it."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import uuid

import pytest
import torch
from click.testing import CliRunner
from conftest import write_factory_module

from cnnvis import RenderConfig
from cnnvis.cli.commands import main
from cnnvis.config import OPTIMIZERS, PARAMS, SETTINGS
from cnnvis.errors import InputError
from cnnvis.params import PARAM_KINDS
from cnnvis.params.base import unregister
from cnnvis.params.optim import OptimizerKind, register_optimizer
from cnnvis.pipeline import memory
from cnnvis.pipeline.steppers import FirstOrder, make_stepper

PLUGIN_BUFFERS = 3  # what the plugin kind declares

# A fresh parameterization: pixels behind a sigmoid (images always in (0, 1)), in a module of its own.
PLUGIN_SOURCE = textwrap.dedent(f"""
    import torch

    from cnnvis.canvas.sizes import resize
    from cnnvis.params.base import Param, register
    from cnnvis.params.pixel import start_canvas

    ASKED = []  # the configs the memory pre-flight asked about


    @register("testkind")
    class SigmoidParam(Param):
        accepts_pixel_ops = True

        def __init__(self, ctx, size, logits):
            self.ctx, self.size = ctx, tuple(size)
            self.logits = logits.requires_grad_(True)
            self.optimizer = ctx.optimizer([self.logits])

        @classmethod
        def canvas_buffers(cls, cfg):
            ASKED.append(cfg)
            return {PLUGIN_BUFFERS}

        @classmethod
        def create(cls, ctx, size, start):
            return cls(ctx, size, torch.logit(start_canvas(ctx, size, start).clamp(0.01, 0.99)))

        def images(self):
            return torch.sigmoid(self.logits)

        def parameters(self):
            return [self.logits]

        def resized(self, size):
            return SigmoidParam(self.ctx, size, resize(self.logits.detach(), size))

        def tensors(self):
            return {{"logits": self.logits.detach()}}

        @classmethod
        def from_tensors(cls, ctx, size, tensors):
            return cls(ctx, size, tensors["logits"].clone())
""")


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The throwaway parameterization module, imported (so registered) for one test, then forgotten."""
    name = f"cnnvis_test_param_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text(PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        yield importlib.import_module(name)
    finally:
        unregister("testkind")
        sys.modules.pop(name, None)


@pytest.fixture
def model(tmp_path, monkeypatch):
    d = tmp_path / "factory_pkg"
    d.mkdir()
    name = write_factory_module(d)
    monkeypatch.syspath_prepend(str(d))
    yield f"{name}:factory"
    sys.modules.pop(name, None)


def _dream(model, out, *extra):
    args = ["dream", "--noise", "--model", model, "--layer", "conv3", "--tile", "32", "--steps", "2"]
    args += ["--octaves", "1", "--final-size", "40x40", "-q", "--out", str(out), *extra]
    return CliRunner().invoke(main, args)


def test_shipped_names_are_the_registered_kinds():
    # --help and validation know the shipped kinds by these names before their modules load
    assert set(PARAMS.registered()) == set(PARAMS.shipped) == {"pixel", "fft", "cppn", "lowres", "maco"}
    assert set(OPTIMIZERS.registered()) == set(OPTIMIZERS.shipped)
    assert tuple(PARAMS) == PARAMS.shipped and tuple(OPTIMIZERS) == OPTIMIZERS.shipped
    assert {"generator", "pixel-decorrelated"} <= set(PARAM_KINDS) - set(PARAMS)  # hand-over kinds only


def test_a_plugin_parameterization_renders_with_param_name(plugin, model, tmp_path, monkeypatch):
    counted = []
    real = memory.canvas_buffers

    def spy(cfg, references=0):
        counted.append(real(cfg, references))
        return counted[-1]

    monkeypatch.setattr(memory, "canvas_buffers", spy)
    out = tmp_path / "x.png"
    res = _dream(model, out, "--param", "testkind", "--pixel-decay", "0.1")
    assert res.exit_code == 0, (res.output, res.exception)
    assert out.exists() and out.stat().st_size > 0
    # the memory pre-flight counted the kind's declared buffers, for the run's own config
    assert plugin.ASKED and plugin.ASKED[-1].param == "testkind"
    assert counted and counted[0] == real(RenderConfig()) + PLUGIN_BUFFERS


def test_a_plugin_kind_is_a_choice_and_declares_its_checks(plugin):
    assert "testkind" in SETTINGS["param"].choices and tuple(PARAMS)[-1] == "testkind"
    assert RenderConfig(param="testkind", clip_extreme=1.0).param == "testkind"  # it accepts the pixel ops
    with pytest.raises(InputError, match="--clip-extreme edits pixels in place and needs --param pixel or testkind"):
        RenderConfig(param="fft", clip_extreme=1.0)
    with pytest.raises(InputError, match="use --param fft, or drop --shared"):
        RenderConfig(param="testkind", shared=True)
    unregister("testkind")
    with pytest.raises(InputError, match="unknown --param 'testkind'; use one of pixel, fft, cppn, lowres, maco$"):
        RenderConfig(param="testkind")


def test_a_plugin_optimizer_is_one_table_entry(model, tmp_path):
    made = []

    def make(params, cfg):
        made.append(cfg.momentum)
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum)

    register_optimizer(OptimizerKind("testopt", make, buffers=lambda cfg: 7, momentum=True))
    try:
        assert isinstance(make_stepper("testopt", True), FirstOrder)
        cfg = RenderConfig(optimizer="testopt")
        assert memory.canvas_buffers(cfg) == memory.canvas_buffers(RenderConfig(optimizer="sgd")) + 6
        out = tmp_path / "o.png"
        res = _dream(model, out, "--optimizer", "testopt", "--momentum", "0.5")
        assert res.exit_code == 0, (res.output, res.exception)
        assert out.exists() and made == [0.5]
    finally:
        OPTIMIZERS.remove("testopt")
    with pytest.raises(InputError, match="unknown --optimizer 'testopt'"):
        RenderConfig(optimizer="testopt")


def test_unknown_kinds_fail_in_one_line_at_parse_time(tmp_path):
    res = CliRunner().invoke(main, ["dream", "--noise", "--param", "png", "--out", str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "'png' is not one of 'pixel', 'fft', 'cppn', 'lowres', 'maco'" in res.output


def test_dream_help_lists_the_kinds_without_importing_torch():
    code = (
        "import sys\n"
        "from cnnvis.cli.commands import main\n"
        "try:\n    main(['dream', '--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "--param [pixel|fft|cppn|lowres|maco]" in text and "--optimizer [rmsprop|sgd|adam|gd|lbfgs]" in text
