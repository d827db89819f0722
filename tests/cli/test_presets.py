"""Presets: TOML defaults for a command, overridden by flags, checked key by key and type by type."""

from __future__ import annotations

import click
import pytest
from conftest import assert_one_line_error, invoke

from cnnvis.cli.main import main
from cnnvis.cli.presets import bundled_names, read_preset, resolve_defaults
from cnnvis.errors import InputError
from cnnvis.io.manifest import read_manifest


@pytest.mark.parametrize("name", bundled_names())
def test_every_bundled_preset_is_valid_for_its_command(name):
    p = read_preset(name)
    assert p.description and p.command in main.commands
    command = main.commands[p.command]
    with click.Context(command) as ctx:
        defaults = resolve_defaults(p, command, ctx)
    assert defaults and set(defaults) <= {q.name for q in command.params}


def test_the_bundled_set_covers_every_mode():
    names = set(bundled_names())
    assert {"cnnvis-noise-1080p", "cnnvis-image-dream", "deepdream-classic", "channel", "neuron", "icnn-gd", "icnn-lbfgs", "icnn-dgn",
            "cnnpref-low", "cnnpref-high", "hires-4k", "cppn", "alpha", "lowres", "decorrelate"} <= names
    noise = read_preset("cnnvis-noise-1080p").options
    assert (noise["initial_size"], noise["final_size"], noise["num_sizes"], noise["noise"]) == ("270x480", "1080x1920", 5, True)


def test_presets_command_lists_them():
    res = invoke(["presets"])
    assert res.exit_code == 0
    for name in bundled_names():
        assert name in res.output


@pytest.fixture
def tiny(factory_module):
    return ["--model", f"{factory_module}:factory", "--weights", "random"]


def test_preset_sets_defaults_and_flags_override(tmp_path, make_image, tiny):
    preset = tmp_path / "mine.toml"
    preset.write_text('description = "test"\ncommand = "dream"\n[options]\nlayer = "conv3"\nsteps = 3\noctaves = 2\n'
                      'tile = 32\njitter = 3\nshift = false\ndream-form = "meansquare"\n')
    src = make_image("s.png", h=48, w=48)
    out = tmp_path / "o.png"
    res = invoke(["dream", src, *tiny, "--preset", preset, "--steps", 2, "-q", "--out", out])
    assert res.exit_code == 0, (res.output, res.exception)
    m = read_manifest(str(out))
    assert m["params"]["steps"] == 2  # the flag wins
    assert (m["params"]["octaves"], m["params"]["layers"], m["params"]["jitter"], m["params"]["shift"], m["params"]["dream_form"]) == (2, ["conv3"], 3, False, "meansquare")
    assert m["config"]["jitter"] == 3 and m["preset"] == str(preset)
    # replay reproduces a preset run too (its values are recorded as parameters)
    assert invoke(["replay", out, "--check"]).exit_code == 0


def test_bundled_preset_with_overrides_runs(tmp_path, tiny):
    out = tmp_path / "n.png"
    res = invoke(["prefer", "--preset", "neuron", *tiny, "--layer", "conv3", "--channel", 1, "--size", "32x32", "--steps", 2, "-q", "--out", out])
    assert res.exit_code == 0, (res.output, res.exception)
    assert read_manifest(str(out))["params"]["channel"] == [1]  # a unit list (one unit here)


def test_bad_presets(tmp_path, tiny):
    def write(text):
        p = tmp_path / "bad.toml"
        p.write_text(text)
        return p

    base = ["dream", *tiny, "--noise", "-q", "--out", tmp_path / "o.png", "--preset"]
    assert_one_line_error(invoke(base + [write('command = "dream"\n[options]\nstepz = 3\n')]), "unknown key 'stepz'", "did you mean 'steps'")
    assert_one_line_error(invoke(base + [write('command = "dream"\n[options]\nsteps = "many"\n')]), "bad value for 'steps'", "many")
    assert_one_line_error(invoke(base + [write('command = "dream"\n[options]\nnoise = "yes"\n')]), "bad value for 'noise'")
    assert_one_line_error(invoke(base + [write('command = "dream"\n[options]\nsteps = [1, 2]\n')]), "takes one value")
    assert_one_line_error(invoke(base + [write('command = "invert"\n[options]\nsteps = 3\n')]), "is for cnnvis invert, not dream")
    assert_one_line_error(invoke(base + [write('command = "dream"\n[options\nsteps = 3\n')]), "not valid TOML")
    assert_one_line_error(invoke(base + [write('comand = "dream"\n')]), "unknown top-level key 'comand'", "did you mean 'command'")
    assert_one_line_error(invoke(base + [write('command = "dream"\n[options]\noptimizer = "adamw"\n')]), "bad value for 'optimizer'")
    assert_one_line_error(invoke(base + ["deepdreem"]), "unknown preset 'deepdreem'", "did you mean 'deepdream-classic'")
    assert_one_line_error(invoke(base + [tmp_path / "none.toml"]), "preset file not found")
    # a preset is data: a string that looks like code is only a (bad) layer name
    res = invoke(base + [write('command = "dream"\n[options]\nlayer = "__import__(\'os\').system(\'touch pwned\')"\n')])
    assert_one_line_error(res, "unknown layer")
    assert not (tmp_path / "pwned").exists()


def test_read_preset_errors_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="needs command"):
        p = tmp_path / "x.toml"
        p.write_text('command = 3\n')
        read_preset(str(p))


def test_package_list_holds_every_package():
    """pyproject lists packages by hand (presets/ maps to cnnvis.presets): none may be missing."""
    import os
    import tomllib

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        listed = set(tomllib.load(f)["tool"]["setuptools"]["packages"])
    found = {os.path.relpath(d, root).replace(os.sep, ".") for d, _, files in os.walk(os.path.join(root, "cnnvis"))
             if "__init__.py" in files} | {"cnnvis.presets"}
    assert found == listed
