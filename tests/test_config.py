"""RenderConfig: declared once in groups, built and read flat, validated from its declarations."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import re

import pytest

import cnnvis.params  # noqa: F401  (registers the --param and --optimizer kinds, whose checks RenderConfig runs)
from cnnvis.config import (
    GROUPS,
    OPTIMIZERS,
    OUTPUT_MODES,
    P_TARGETS,
    PARAMS,
    PRECISIONS,
    SETTINGS,
    SIZE_SPACINGS,
    SWITCHES,
    TV_OPERATORS,
    Optimizer,
    RenderConfig,
    Setting,
    Sizes,
)
from cnnvis.errors import InputError


def test_flat_construction_and_reads():
    cfg = RenderConfig(steps=5, lr=0.1, optimizer="adam", param="fft", output="rescale", shift=False)
    assert (cfg.steps, cfg.lr, cfg.optimizer, cfg.param, cfg.output, cfg.shift) == (
        5,
        0.1,
        "adam",
        "fft",
        "rescale",
        False,
    )
    assert cfg.tv_weight == 0.05 and cfg.tile is None and cfg.seed == 0  # untouched fields keep their defaults
    assert RenderConfig().as_dict() == {name: s.default for name, s in SETTINGS.items()}


def test_groups():
    cfg = RenderConfig(steps=5, lr=0.1, tv_weight=1.0, seed=3)
    assert list(cfg.groups) == [
        "sizes",
        "tiling",
        "transforms",
        "parameterization",
        "optim",
        "regularizers",
        "pixel_ops",
        "out",
        "compute",
    ]
    assert [type(g) for g in cfg.groups.values()] == list(GROUPS)
    assert cfg.optim.lr == 0.1 and cfg.sizes.steps == 5 and cfg.regularizers.tv_weight == 1.0 and cfg.out.seed == 3
    assert cfg.groups["optim"] is cfg.optim
    # every flat field is in exactly one group, and no group name shadows a field
    names = [f.name for g in GROUPS for f in dataclasses.fields(g)]
    assert names == list(RenderConfig.field_names()) and len(set(names)) == len(names) == 76
    assert not {g.NAME for g in GROUPS} & set(names)
    # groups in, flat names win
    built = RenderConfig(optim=Optimizer(lr=0.2, optimizer="sgd"), lr=0.3, sizes=Sizes(steps=7))
    assert (built.lr, built.optimizer, built.steps) == (0.3, "sgd", 7)


def test_as_dict_round_trip_equality_hash_and_immutability():
    cfg = RenderConfig(steps=5, lr=0.1, final_size="64x64", clip_extreme=5.0, clip_extreme_end=1.0)
    d = cfg.as_dict()
    assert list(d) == list(RenderConfig.field_names())
    assert RenderConfig(**d) == cfg and hash(RenderConfig(**d)) == hash(cfg)
    assert cfg != RenderConfig(steps=6, lr=0.1) and len({cfg, RenderConfig(**d)}) == 1
    assert pickle.loads(pickle.dumps(cfg)) == cfg and copy.deepcopy(cfg) == cfg
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.optim.lr = 1.0
    assert dataclasses.replace(cfg, lr=0.5).lr == 0.5 and cfg.replace(steps=2).steps == 2 and cfg.lr == 0.1
    assert cfg.scheduled("clip_extreme", 0.5) == 3.0 and cfg.scheduled("lr", 0.5) == 0.1
    assert eval(repr(cfg)) == cfg  # noqa: S307 (the repr names the non-default fields)
    with pytest.raises(TypeError, match="'stepz'"):
        RenderConfig(stepz=3)


def test_every_field_has_help_a_default_and_a_known_type():
    for name, s in SETTINGS.items():
        assert isinstance(s, Setting) and s.name == name
        assert s.help and s.help.endswith("."), name
        assert s.type in (int, float, str, bool), name
        assert s.default is not None or s.optional, name
        assert s.flag.startswith("--")
    assert SETTINGS["output"].flag == "--output-mode" and SETTINGS["shift"].decl == "--shift/--no-shift"


def test_choices_are_defined_once():
    from cnnvis.regularize.penalties import TV_OPERATORS as penalty_operators

    assert penalty_operators is TV_OPERATORS
    assert SETTINGS["param"].allowed is PARAMS and SETTINGS["optimizer"].allowed is OPTIMIZERS
    expect = {
        "optimizer": tuple(OPTIMIZERS),
        "param": tuple(PARAMS),
        "tv_operator": TV_OPERATORS,
        "size_spacing": SIZE_SPACINGS,
        "p_target": P_TARGETS,
        "output": OUTPUT_MODES,
        "precision": PRECISIONS,
        "channels_last": SWITCHES,
        "fold_batchnorm": SWITCHES,
        "fp32_strided_depthwise": SWITCHES,
    }
    assert {n: s.choices for n, s in SETTINGS.items() if s.choices} == expect


@pytest.mark.parametrize(
    "kw,needles",
    [
        ({"lr": 0}, ["--lr", "> 0", "got 0"]),
        ({"lr": float("nan")}, ["--lr", "finite", "nan"]),
        ({"lr": float("inf")}, ["--lr", "inf"]),
        ({"steps": 0}, ["--steps", ">= 1"]),
        ({"steps": None}, ["--steps", "None"]),
        ({"decay_rate": 1.0}, ["--decay-rate", "[0, 1)"]),
        ({"pixel_decay": 1.0}, ["--pixel-decay", "[0, 1)", "fraction"]),
        ({"clip_small_norm_end": 101}, ["--clip-small-norm-end", "[0, 100]", "percentile"]),
        ({"transform_scale": 1.0}, ["--transform-scale", "fraction of the tile"]),
        ({"tv_weight": -1.0}, ["--tv-weight", ">= 0"]),
        ({"lr_decay_every": -1}, ["--lr-decay-every", "0 = off"]),
        ({"tile": 0}, ["--tile"]),
        ({"overlap": -2}, ["--overlap"]),
        ({"octaves": 0}, ["--octaves"]),
        ({"lr": "fast"}, ["--lr", "'fast'"]),
        ({"optimizer": "bfgs"}, ["--optimizer", "'bfgs'", "adam"]),
        ({"param": "png"}, ["--param", "'png'", "pixel, fft"]),
        ({"tv_operator": "prewitt"}, ["--tv-operator", "'prewitt'", "sobel"]),
        ({"p_target": "x"}, ["--p-target", "'x'"]),
        ({"output": "y"}, ["--output-mode", "'y'", "clip, rescale"]),
        ({"size_spacing": "log"}, ["--size-spacing", "'log'"]),
        ({"param": "fft", "clip_extreme": 1.0}, ["--clip-extreme", "needs --param pixel"]),
        ({"param": "fft", "blur_every": 2}, ["--blur-every", "needs --param pixel"]),
    ],
)
def test_range_and_choice_errors_are_one_line_input_errors(kw, needles):
    with pytest.raises(InputError) as e:
        RenderConfig(**kw)
    msg = str(e.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, (n, msg)


def test_groups_validate_alone():
    with pytest.raises(InputError, match="--lr"):
        Optimizer(lr=-1)
    assert Optimizer(lr=0.5).lr == 0.5


def test_bounds_allow_their_edges():
    RenderConfig(
        pixel_decay=0.0,
        clip_extreme=100,
        decay_rate=0.0,
        tv_weight=0,
        jitter=0,
        overlap=0,
        lr_decay_every=0,
        latent_lr=None,
        seed=-1,
    )


@pytest.mark.parametrize("field", ["initial_size", "final_size"])
@pytest.mark.parametrize("text", ["5x", "x", "12*40", "x-2", "abc"])
def test_a_malformed_size_is_refused_by_the_config_itself(field, text):
    """So the CLI refuses it before the model loads (the sizes are parsed only when the canvas is planned)."""
    with pytest.raises(InputError, match=f"malformed size '{re.escape(text)}'"):
        RenderConfig(**{field: text})
    assert RenderConfig(**{field: "x1.5"}) != RenderConfig(**{field: "64x96"})
