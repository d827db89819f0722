"""Presets: TOML defaults for a command, overridden by flags, checked key by key and type by type."""

from __future__ import annotations

import os

import click
import pytest
from conftest import assert_one_line_error, invoke

from cnnvis.cli.commands import main
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
    assert {
        "cnnvis-noise-1080p",
        "cnnvis-image-dream",
        "deepdream-classic",
        "channel",
        "neuron",
        "icnn-gd",
        "icnn-lbfgs",
        "icnn-dgn",
        "cnnpref-low",
        "cnnpref-high",
        "hires-4k",
        "cppn",
        "alpha",
        "lowres",
        "decorrelate",
    } <= names
    noise = read_preset("cnnvis-noise-1080p").options
    assert (noise["initial_size"], noise["final_size"], noise["num_sizes"], noise["noise"]) == (
        "270x480",
        "1080x1920",
        5,
        True,
    )


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
    preset.write_text(
        'description = "test"\ncommand = "dream"\n[options]\nlayer = "conv3"\nsteps = 3\noctaves = 2\n'
        'tile = 32\njitter = 3\nshift = false\ndream-form = "meansquare"\n'
    )
    src = make_image("s.png", h=48, w=48)
    out = tmp_path / "o.png"
    res = invoke(["dream", src, *tiny, "--preset", preset, "--steps", 2, "-q", "--out", out])
    assert res.exit_code == 0, (res.output, res.exception)
    m = read_manifest(str(out))
    assert m["params"]["steps"] == 2  # the flag wins
    assert (
        m["params"]["octaves"],
        m["params"]["layers"],
        m["params"]["jitter"],
        m["params"]["shift"],
        m["params"]["dream_form"],
    ) == (2, ["conv3"], 3, False, "meansquare")
    assert m["config"]["jitter"] == 3 and m["preset"] == str(preset)
    # replay reproduces a preset run too (its values are recorded as parameters)
    rep = invoke(["replay", "--trust-model", out, "--check"])
    assert rep.exit_code == 0, rep.stderr


def test_bundled_preset_with_overrides_runs(tmp_path, tiny):
    out = tmp_path / "n.png"
    res = invoke(
        [
            "prefer",
            "--preset",
            "neuron",
            *tiny,
            "--layer",
            "conv3",
            "--channel",
            1,
            "--size",
            "32x32",
            "--steps",
            2,
            "-q",
            "--out",
            out,
        ]
    )
    assert res.exit_code == 0, (res.output, res.exception)
    assert read_manifest(str(out))["params"]["channel"] == [1]  # a unit list (one unit here)


def test_bad_presets(tmp_path, tiny):
    def write(text):
        p = tmp_path / "bad.toml"
        p.write_text(text)
        return p

    base = ["dream", *tiny, "--noise", "-q", "--out", tmp_path / "o.png", "--preset"]
    assert_one_line_error(
        invoke(base + [write('command = "dream"\n[options]\nstepz = 3\n')]),
        "unknown key 'stepz'",
        "did you mean 'steps'",
    )
    assert_one_line_error(
        invoke(base + [write('command = "dream"\n[options]\nsteps = "many"\n')]), "bad value for 'steps'", "many"
    )
    assert_one_line_error(
        invoke(base + [write('command = "dream"\n[options]\nnoise = "yes"\n')]), "bad value for 'noise'"
    )
    assert_one_line_error(invoke(base + [write('command = "dream"\n[options]\nsteps = [1, 2]\n')]), "takes one value")
    assert_one_line_error(
        invoke(base + [write('command = "invert"\n[options]\nsteps = 3\n')]), "is for cnnvis invert, not dream"
    )
    assert_one_line_error(invoke(base + [write('command = "dream"\n[options\nsteps = 3\n')]), "not valid TOML")
    assert_one_line_error(
        invoke(base + [write('comand = "dream"\n')]), "unknown top-level key 'comand'", "did you mean 'command'"
    )
    assert_one_line_error(
        invoke(base + [write('command = "dream"\n[options]\noptimizer = "adamw"\n')]), "bad value for 'optimizer'"
    )
    assert_one_line_error(
        invoke(base + ["deepdreem"]), "unknown preset 'deepdreem'", "did you mean 'deepdream-classic'"
    )
    assert_one_line_error(invoke(base + [tmp_path / "none.toml"]), "preset file not found")
    # a preset is data: a string that looks like code is only a (bad) layer name
    res = invoke(base + [write("command = \"dream\"\n[options]\nlayer = \"__import__('os').system('touch pwned')\"\n")])
    assert_one_line_error(res, "unknown layer")
    assert not (tmp_path / "pwned").exists()


def test_read_preset_errors_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="needs command"):
        p = tmp_path / "x.toml"
        p.write_text("command = 3\n")
        read_preset(str(p))


def test_package_list_holds_every_package():
    """pyproject lists packages by hand (presets/ maps to cnnvis.presets): none may be missing."""
    import os
    import tomllib

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        listed = set(tomllib.load(f)["tool"]["setuptools"]["packages"])
    found = {
        os.path.relpath(d, root).replace(os.sep, ".")
        for d, _, files in os.walk(os.path.join(root, "cnnvis"))
        if "__init__.py" in files
    } | {"cnnvis.presets"}
    assert found == listed


# ------------------------------------------------------------------------------- hostile presets
def _dream_with(preset) -> list:
    """``cnnvis dream`` with only a preset: its error comes before any model loads, so this is fast."""
    return ["dream", "--noise", "-q", "--out", "x.png", "--preset", preset]


@pytest.mark.parametrize(
    "line, needles",
    [
        ("steps = 1e400", ["'steps'", "expected a finite number, got inf"]),  # TOML reads 1e400 as inf
        ("l1_weight = -inf", ["'l1_weight'", "got -inf"]),
        ("blend = nan", ["'blend'", "got nan"]),  # nan passes every range comparison
        ("lr = '1e999'", ["'lr'", "finite number, got inf"]),  # a string click converts to inf
        ("steps = true", ["'steps'", "expected an integer, got true"]),  # click would take it as 1
        ("lr = false", ["'lr'", "expected a number, got false"]),
        ("steps = 2.5", ["'steps'", "expected an integer, got 2.5"]),  # click would truncate it to 2
        ("steps = 0", ["'steps'", "0 is not in the range x>=1"]),
        ("blend = 1.5", ["'blend'", "1.5 is not in the range 0<=x<=1"]),
        ("seed = 99999999999999999999", ["'seed'", "99999999999999999999 is out of range"]),
        ("l1_weight = " + "9" * 400, ["'l1_weight'", "an integer of 400 digits is out of range"]),  # float() overflows
        ("optimizer = true", ["'optimizer'", "expected one of rmsprop", "got true"]),
        ("optimizer = 3", ["'optimizer'", "3 is not one of"]),
        ("layer = true", ["'layer'", "expected a string, got true"]),
        ("layer = ['conv3', true]", ["'layer'", "got true"]),
        ("layer = [['conv3']]", ["'layer'", "expected a string, got a list"]),
        ("objective = [{ kind = 'dream' }]", ["'objective'", "got a table"]),
        ("guide = 1979-05-27", ["'guide'", "got the date/time 1979-05-27"]),
        ("shift = 1", ["'shift'", "expected true or false, got 1"]),
        ("channel = true", ["'channel'", "got true"]),
        ("channel = 99999999999999999999999", ["'channel'", "out of range"]),
    ],
)
def test_preset_values_are_checked_per_option_type(tmp_path, monkeypatch, line, needles):
    monkeypatch.chdir(tmp_path)
    preset = tmp_path / "p.toml"
    preset.write_text(f'command = "dream"\n[options]\n{line}\n')
    assert_one_line_error(invoke(_dream_with(preset)), "preset 'p': bad value for", *needles)
    assert not (tmp_path / "x.png").exists()


def test_preset_numbers_of_the_right_kind_are_taken(tmp_path):
    preset = tmp_path / "ok.toml"
    preset.write_text('command = "dream"\n[options]\nlr = 1\nsteps = "3"\nblend = 0.5\nchannel = 7\nshift = false\n')
    command = main.commands["dream"]
    with click.Context(command) as ctx:
        got = resolve_defaults(read_preset(str(preset)), command, ctx)
    assert got == {"lr": 1.0, "steps": 3, "blend": 0.5, "channel": [7], "shift": False}
    assert isinstance(got["lr"], float) and isinstance(got["steps"], int)


def _png_bytes(make_image) -> bytes:
    with open(make_image("real.png", h=8, w=8), "rb") as f:
        return f.read()


@pytest.mark.parametrize(
    "content, needles",
    [
        (bytes(range(256)) * 8, ["is not a UTF-8 TOML file", "offset 128"]),  # random-looking binary
        ('command = "dream"\n'.encode("utf-16"), ["is not a UTF-8 TOML file", "offset 0"]),
        (None, ["is not a UTF-8 TOML file"]),  # a PNG renamed .toml
        (b"# a preset\n" * 100_000, ["over 1 MB, too big for a preset"]),  # valid TOML, but no preset is this big
        (
            b'command = "dream"\n[options]\nlayer = ' + b"[" * 5000 + b"]" * 5000 + b"\n",
            ["nests arrays or tables too deeply"],
        ),
        (b'command = "dream"\nx = ' + b"9" * 5000 + b"\n", ["is not valid TOML", "4300 digits"]),
        (b'command = "dream"\ndescription = 3\n', ["description that is not a string"]),
        (
            b'command = "dream"\n[options]\n"bad\\nkey" = 3\n',
            ["unknown key 'bad key'"],
        ),  # a newline cannot split the line
    ],
)
def test_preset_files_that_are_not_presets(tmp_path, make_image, content, needles):
    preset = tmp_path / "bad.toml"
    preset.write_bytes(_png_bytes(make_image) if content is None else content)
    assert_one_line_error(invoke(_dream_with(preset)), "preset", *needles)


def test_utf8_bom_preset_is_read(tmp_path):
    preset = tmp_path / "bom.toml"
    preset.write_bytes('\ufeffcommand = "dream"\n[options]\nsteps = 4\n'.encode())
    assert read_preset(str(preset)).options == {"steps": 4}


def test_preset_path_that_is_a_folder(tmp_path):
    (tmp_path / "dir.toml").mkdir()
    assert_one_line_error(invoke(_dream_with(tmp_path / "dir.toml")), f"preset '{tmp_path / 'dir.toml'}' is a folder")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_preset(tmp_path):
    preset = tmp_path / "locked.toml"
    preset.write_text('command = "dream"\n')
    preset.chmod(0)
    try:
        assert_one_line_error(invoke(_dream_with(preset)), "cannot read preset", "locked.toml")
    finally:
        preset.chmod(0o600)


@pytest.mark.skipif(not os.path.isfile("/proc/self/mem"), reason="needs Linux /proc")
def test_preset_whose_read_fails(tmp_path):
    # a regular file whose read fails (EIO) even for root: the OSError of any unreadable preset
    assert_one_line_error(invoke(_dream_with("/proc/self/mem")), "cannot read preset '/proc/self/mem'")


def test_python_file_as_preset_is_data_never_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil.py").write_text("import pathlib\npathlib.Path('pwned').touch()\n")
    for given in ("evil.py", "./evil.py", str(tmp_path / "evil.py")):  # a bare name with an extension is a path
        assert_one_line_error(invoke(_dream_with(given)), f"preset '{given}' is not valid TOML")
    assert not (tmp_path / "pwned").exists()
    # any extension is read as TOML: this file's value is checked like a .toml preset's
    (tmp_path / "look.txt").write_text('command = "dream"\n[options]\nsteps = true\n')
    assert_one_line_error(invoke(_dream_with("look.txt")), "preset 'look'", "expected an integer, got true")
