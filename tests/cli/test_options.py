"""The render options of the CLI are generated from the config's declarations, one to one."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner
from conftest import assert_one_line_error

from cnnvis.cli.commands import main
from cnnvis.cli.options import default_texts, render_options
from cnnvis.config import SETTINGS, RenderConfig


def _invoke(args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _render_params(command: click.Command) -> dict[str, click.Option]:
    return {p.name: p for p in command.params if p.name in SETTINGS}


@pytest.mark.parametrize("name", ["dream", "invert", "prefer"])
def test_options_equal_the_config_fields(name):
    command = main.commands[name]
    params = _render_params(command)
    assert list(params) == list(RenderConfig.field_names())
    for field, p in params.items():
        s = SETTINGS[field]
        assert p.opts[0] == s.flag and p.help == s.help
        if s.type is bool:
            assert p.is_flag and p.secondary_opts == ["--no-" + s.flag[2:]]
        elif s.choices:
            assert isinstance(p.type, click.Choice) and tuple(p.type.choices) == s.choices
        elif s.bounded:
            assert isinstance(p.type, click.IntRange if s.type is int else click.FloatRange)
            assert (p.type.min, p.type.max, p.type.min_open, p.type.max_open) == (
                s.low,
                s.high,
                s.low_open,
                s.high_open,
            )
        if name == "dream":
            assert p.default == s.default
        else:
            assert p.default is None  # the tuned defaults apply later


def test_flags_keep_their_spellings():
    opts = {p.name: p.opts + p.secondary_opts for p in main.commands["dream"].params}
    assert opts["output"] == ["--output-mode"]
    assert opts["shift"] == ["--shift", "--no-shift"] and opts["normalize_grad"] == [
        "--normalize-grad",
        "--no-normalize-grad",
    ]
    assert opts["tv_weight"] == ["--tv-weight"] and opts["clip_small_contrib_every"] == ["--clip-small-contrib-every"]


def test_invert_help_shows_the_tuned_defaults():
    res = _invoke(["invert", "--help"])
    assert res.exit_code == 0
    text = " ".join(res.output.split())  # unwrap
    assert "Optimizer steps per size. [default: 200;" in text
    assert (
        "[default: 2.0; 0.3 with --optimizer lbfgs; 4.0 at layers of stride >= 8 on pixels; 24.0 on the last layers "
        "with adam" in text
    )
    assert "[default: pixel; fft with --optimizer lbfgs;" in text
    assert "Optimizer over the canvas. [default: adam; lbfgs at layers of stride <= 16]" in text
    texts = default_texts("invert")
    assert (
        texts["steps"] == "200"
        and texts["optimizer"] == "adam; lbfgs at layers of stride <= 16"
        and texts["lr"].startswith("0.1;")
    )


def test_prefer_and_dream_help_show_their_defaults():
    text = " ".join(_invoke(["prefer", "--help"]).output.split())
    assert "Optimizer steps per size. [default: 128;" in text and "[default: fft; pixel with --rf-mask]" in text
    text = " ".join(_invoke(["dream", "--help"]).output.split())
    assert "Optimizer steps per size. [default: 20;" in text and "[default: 4 when no size flag" in text


@pytest.mark.parametrize(
    "args,needles",
    [
        (["dream", "--steps", 0], ["--steps", "0", "x>=1"]),
        (["dream", "--lr", -1], ["--lr", "x>0"]),
        (["dream", "--decay-rate", 1], ["--decay-rate"]),
        (["dream", "--optimizer", "bfgs"], ["--optimizer", "bfgs"]),
        (["dream", "--transform-crop", 0], ["--transform-crop", "0<x<=1"]),
        (["prefer", "--layer", "x", "--channel", 1, "--transform-crop", 1.5], ["--transform-crop", "1.5"]),
        (["invert", "--pixel-decay", 2], ["--pixel-decay"]),
        (["prefer", "--layer", "x", "--channel", 1, "--batch-size", 0], ["--batch-size"]),
        (["layers", "--size", 0], ["--size", "0"]),
        (["train-generator", "--layer", "x", "--images", "y", "--out", "z.pt", "--steps", 0], ["--steps"]),
        (["train-generator", "--layer", "x", "--images", "y", "--out", "z.pt", "--adv-weight", -1], ["--adv-weight"]),
        (["convert-caffe", "a.prototxt", "b.caffemodel", "--out", "c.pt", "--input-size", 0], ["--input-size"]),
    ],
)
def test_bad_range_fails_at_parse_time(args, needles):
    assert_one_line_error(_invoke(args), *needles)


def test_render_options_decorates_any_command():
    @click.command()
    @render_options
    def cmd(**kw):
        click.echo(repr(RenderConfig(**kw)))

    res = CliRunner().invoke(cmd, ["--steps", "3", "--output-mode", "rescale", "--no-shift"])
    assert res.exit_code == 0, res.output
    assert eval(res.output) == RenderConfig(steps=3, output="rescale", shift=False)  # noqa: S307


# Options that belong to the command line itself, not to any recipe: which preset, and how
# replay and resume treat a recorded run.
CLI_ONLY = {"preset", "check", "trust_model"}
CLI_ONLY_COMMANDS = {"replay", "resume"}


def test_every_option_default_is_its_declared_default():
    """Each click option is generated from one declared setting, and its default is that
    declaration's (None for the render settings of the tuned commands, which apply their own)."""
    undeclared, wrong = [], []
    for name, command in main.commands.items():
        # a tuned command (invert, prefer, atlas) leaves every render setting None
        tuned_command = any(p.name == "steps" and p.default is None for p in command.params)
        for p in command.params:
            if not isinstance(p, click.Option) or p.name in CLI_ONLY or name in CLI_ONLY_COMMANDS:
                continue
            s = getattr(p, "setting", None)
            if s is None:
                undeclared.append(f"{name} {p.opts[0]}")
                continue
            want = None if tuned_command and SETTINGS.get(s.name) is s else s.default
            if (tuple(p.default) if p.multiple else p.default) != want:
                wrong.append(f"{name} {p.opts[0]}: click {p.default!r}, declared {want!r}")
    assert not undeclared, "options not generated from a declaration: " + ", ".join(undeclared)
    assert not wrong, "; ".join(wrong)


def test_no_literal_choice_lists_in_the_cli():
    """Choice lists come from the library's tuples, never a literal in a click decorator."""
    import pathlib
    import re

    cli = pathlib.Path(__file__).resolve().parents[2] / "cnnvis" / "cli"
    hits = [
        f"{p.name}:{i}"
        for p in cli.glob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"click\.Choice\(\[\"", line)
    ]
    assert not hits, hits
