"""What each kind declares: its checks, its tuned settings, its optimizer table entry."""

from __future__ import annotations

import itertools

import pytest
import torch

from cnnvis import defaults as D
from cnnvis.config import OPTIMIZERS, PARAMS, RenderConfig
from cnnvis.errors import InputError
from cnnvis.params.optim import make_optimizer, optimizer_kind, set_hyper
from cnnvis.pipeline.steppers import LBFGS, FirstOrder, make_stepper
from cnnvis.recipes.recon import _invert_defaults


def test_the_kinds_tuned_settings_are_the_defaults_tables():
    # cnnvis.defaults keeps its copies for --help (which imports no torch) until they are read from the kinds
    assert {o: k.tuned["invert"] for o, k in OPTIMIZERS.registered().items()} == D.INVERT_OPTIMIZER_DEFAULTS
    assert OPTIMIZERS.get("lbfgs").tuned["invert_deep"] == D.INVERT_LBFGS_DEEP_DEFAULTS
    assert OPTIMIZERS.get("adam").tuned["invert_top"] == D.INVERT_TOP_DEFAULTS
    assert PARAMS.get("pixel").tuned["invert_deep"] == D.INVERT_DEEP_DEFAULTS
    prefer = {p: cls.tuned["prefer"] for p, cls in PARAMS.registered().items() if "prefer" in cls.tuned}
    assert prefer == D.PREFER_PARAM_DEFAULTS


def _old_invert_defaults(strides, depths, options):
    """The policy as it was written before the kinds carried their tuned settings."""
    d: dict = {}
    optimizer = options.get("optimizer")
    if optimizer is None:
        shallow = bool(strides) and max(strides) <= D.SHALLOW_STRIDE
        d.update(D.INVERT_SHALLOW_DEFAULTS if shallow else {})
        optimizer = d.get("optimizer", D.INVERT_DEFAULTS["optimizer"])
    param = options.get("param", D.INVERT_OPTIMIZER_DEFAULTS.get(optimizer, {}).get("param", "pixel"))
    if optimizer == "lbfgs" and strides and max(strides) >= D.DEEP_STRIDE:
        d.update(D.INVERT_LBFGS_DEEP_DEFAULTS)
    if depths and max(depths) >= D.TOP_DEPTH and optimizer == "adam" and "param" not in options:
        d.update(D.INVERT_TOP_DEFAULTS)
    elif strides and max(strides) >= D.DEEP_STRIDE and param == "pixel":
        d.update(D.INVERT_DEEP_DEFAULTS)
    return d


@pytest.mark.parametrize("optimizer", [None, *OPTIMIZERS, "bfgs"])
def test_the_invert_policy_reads_the_kinds_as_it_read_the_tables(optimizer):
    params = [None, *PARAMS, "png"]
    for strides, depths, param in itertools.product([(), (4,), (8,), (16,), (32,)], [(), (0.5,), (0.97,)], params):
        options = {k: v for k, v in (("optimizer", optimizer), ("param", param)) if v is not None}
        assert _invert_defaults(strides, depths, options) == _old_invert_defaults(strides, depths, options)


def test_optimizer_entries():
    p = torch.zeros(1, 3, 4, 4, requires_grad=True)
    lbfgs = make_optimizer([p], RenderConfig(optimizer="lbfgs", lbfgs_history=7, lr=0.5))
    assert isinstance(lbfgs, torch.optim.LBFGS)
    g = lbfgs.param_groups[0]
    assert (g["history_size"], g["max_iter"], g["max_eval"], g["line_search_fn"]) == (7, 1, 20, "strong_wolfe")
    assert [type(make_stepper(o, True)) for o in OPTIMIZERS] == [FirstOrder] * 4 + [LBFGS]
    assert [o for o in OPTIMIZERS if optimizer_kind(o).momentum] == ["sgd", "gd"]
    with pytest.raises(InputError, match="unknown --optimizer 'bfgs'; use one of rmsprop, sgd, adam, gd, lbfgs"):
        optimizer_kind("bfgs")


@pytest.mark.parametrize("optimizer,moved", [("sgd", True), ("gd", True), ("rmsprop", False)])
def test_set_hyper_sets_the_momentum_of_heavy_ball_optimizers_only(optimizer, moved):
    cfg = RenderConfig(optimizer=optimizer, momentum=0.9)
    opt = make_optimizer([torch.zeros(2, requires_grad=True)], cfg)
    before = opt.param_groups[0]["momentum"]
    set_hyper(opt, cfg, 0.3, 0.5)
    assert opt.param_groups[0]["lr"] == 0.3
    assert opt.param_groups[0]["momentum"] == (0.5 if moved else before)  # RMSProp's stays at cnn-vis's 0


@pytest.mark.parametrize(
    "kw,needle",
    [
        (
            {"param": "fft", "pixel_decay": 0.1},
            "--pixel-decay edits pixels in place and needs --param pixel, not --param fft",
        ),
        (
            {"param": "lowres", "blur_every": 2},
            "--blur-every edits pixels in place and needs --param pixel, not --param lowres",
        ),
        ({"param": "pixel", "shared": True}, "use --param fft, or drop --shared (got --param pixel)"),
        ({"param": "cppn", "decorrelate": True}, "the CPPN draws RGB itself, drop --decorrelate"),
        ({"param": "cppn", "shared": True, "decorrelate": True}, "drop --shared"),  # in the order they were checked
    ],
)
def test_each_kind_checks_its_settings(kw, needle):
    with pytest.raises(InputError) as e:
        RenderConfig(**kw)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_kinds_accept_what_they_declare():
    RenderConfig(param="pixel", clip_extreme=1.0, decorrelate=True)
    RenderConfig(param="fft", shared=True, decorrelate=True)
    RenderConfig(param="lowres", decorrelate=True)
