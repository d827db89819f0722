"""Preset files through the library alone (no click): bundled ones read, hostile ones one InputError line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cnnvis.errors import InputError
from cnnvis.io.presets import BadValue, OptionSpec, Preset, bundled_names, read_preset, resolve_options


def test_bundled_preset_reads_without_click():
    # a fresh interpreter: in this one the CLI tests may already have imported click
    code = (
        "import sys\n"
        "from cnnvis.io.presets import bundled_names, read_preset\n"
        "p = read_preset('neuron')\n"
        "assert (p.name, p.command, p.options) == ('neuron', 'prefer', {'layer': 'blocks.4', 'channel': 5}), p\n"
        "assert all(read_preset(n).description for n in bundled_names())\n"
        "assert not {'click', 'tqdm', 'torch'} & set(sys.modules), 'a preset is read without the CLI or torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def _int_spec(name: str) -> OptionSpec:
    """An integer option, as a caller other than the CLI would describe it."""

    def convert(value):
        try:
            return int(value)
        except ValueError:
            raise BadValue(f"Invalid value for '--{name}': {value!r} is not a valid integer.") from None

    return OptionSpec(name, f"'--{name}'", "an integer", convert, integer=True)


SPECS = {"steps": _int_spec("steps"), "octaves": _int_spec("octaves")}


def test_values_are_checked_without_click():
    preset = Preset("mine", "dream", "", {"steps": "3", "octaves": 2}, "mine.toml")
    assert resolve_options(preset, "dream", SPECS) == {"steps": 3, "octaves": 2}
    assert "dream" in {read_preset(n).command for n in bundled_names()}


def _one_line(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text and text.strip() == text
    return text


@pytest.mark.parametrize(
    "options, needles",
    [
        ({"steps": 2.5}, ["preset 'p': bad value for 'steps'", "expected an integer, got 2.5"]),
        ({"steps": True}, ["expected an integer, got true"]),
        ({"steps": float("inf")}, ["expected a finite number, got inf"]),
        ({"steps": "many"}, ["'many' is not a valid integer"]),
        ({"steps": {"a": 1}}, ["preset 'p': key 'steps' must be a value, not a table"]),
        ({"steps": [1, 2]}, ["key 'steps' takes one value, got a list [1, 2]"]),
        ({"bad\nkey": 1}, ["unknown key 'bad key' for dream"]),
        ({"stepz": 1}, ["did you mean 'steps'?"]),
    ],
)
def test_hostile_values_are_one_input_error_line(options, needles):
    with pytest.raises(InputError) as excinfo:
        resolve_options(Preset("p", "dream", "", options, "p.toml"), "dream", SPECS)
    text = _one_line(excinfo)
    assert all(n in text for n in needles), text


@pytest.mark.parametrize(
    "name, content, needle",
    [
        ("evil.py", "import pathlib\npathlib.Path('pwned').touch()\n", "is not valid TOML"),
        ("opts.toml", 'command = "dream"\noptions = 3\n', 'needs command = "NAME" (a string) and an [options] table'),
        ("list.toml", 'command = "dream"\noptions = [1]\n', "an [options] table"),
        ("top.toml", '"a\\nb" = 1\n', "unknown top-level key 'a\\nb'"),
    ],
)
def test_hostile_files_are_one_input_error_line(tmp_path, monkeypatch, name, content, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_text(content)
    with pytest.raises(InputError) as excinfo:
        read_preset(name)  # a bare name with an extension is a path, never a module to import
    assert needle in _one_line(excinfo)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # nothing ran, nothing written


def test_unknown_bundled_name():
    with pytest.raises(InputError) as excinfo:
        read_preset("deepdreem")
    assert "did you mean 'deepdream-classic'?" in _one_line(excinfo)
