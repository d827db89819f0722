"""Presets: TOML files of command defaults, one per look (data, never code).

A preset names the command it is for, a one-line description, and option values::

    description = "cnn-vis gallery: noise grown over 5 sizes from 270x480 to 1080x1920"
    command = "dream"

    [options]
    noise = true
    layer = ["blocks.4.2"]       # the flag's name (--layer) or its parameter name (layers)
    final_size = "1080x1920"     # dashes or underscores

:func:`read_preset` finds and parses one; :func:`resolve_options` checks its values against a
command's options, described by :class:`OptionSpec` (the CLI builds these from its click options).
A preset may come from anyone: it is read with :mod:`tomllib`, bounded in size, never imported,
run or written, and every fault is one :class:`~cnnvis.errors.InputError` line. The bundled presets
live in the repository's ``presets/`` folder (installed as ``cnnvis.presets``).
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cnnvis.errors import InputError, did_you_mean

TOP_KEYS = ("description", "command", "options")
MAX_PRESET_BYTES = 1 << 20  # a preset is a few lines; a bigger file is a wrong path, not a preset
INT64_MAX = 2**63 - 1  # beyond it torch, numpy and C code overflow


@dataclass(frozen=True)
class Preset:
    """A parsed preset: ``name`` (file stem), ``command``, ``description``, ``options`` (key -> value)
    and its ``path``."""

    name: str
    command: str
    description: str
    options: dict
    path: str


class BadValue(InputError):
    """A value that an option's type refuses; its text names the option and the reason
    (``Invalid value for '--steps': 0 is not in the range x>=1.``)."""


@dataclass(frozen=True)
class OptionSpec:
    """What one option of a command takes from a preset.

    ``name`` is the parameter name the value is returned under; ``hint`` how messages name the
    option (``'--layer' / '-l'``); ``expected`` its type in words (``an integer``); ``convert`` the
    option's own conversion of one value, raising :class:`BadValue`; ``integer`` whether that
    type is an integer type; ``flag`` an on/off switch; ``multiple`` a repeatable option (a list).
    """

    name: str
    hint: str
    expected: str
    convert: Callable[[object], object]
    integer: bool = False
    flag: bool = False
    multiple: bool = False


def bundled_dir() -> str:
    """The folder of the presets that ship with cnnvis."""
    from importlib import resources

    return str(resources.files("cnnvis.presets"))


def bundled_names() -> list[str]:
    """The names of the bundled presets, sorted (each is ``NAME.toml`` in :func:`bundled_dir`)."""
    return sorted(f[:-5] for f in os.listdir(bundled_dir()) if f.endswith(".toml"))


def _is_path(name_or_path: str) -> bool:
    """A path, not a bundled name: bundled names have no folder and no extension (``evil.py`` is a file)."""
    seps = [os.sep] + ([os.altsep] if os.altsep else [])
    return any(sep in name_or_path for sep in seps) or bool(os.path.splitext(name_or_path)[1])


def find_preset(name_or_path: str) -> str:
    """A preset file: a path to a ``.toml`` file, or the name of a bundled preset."""
    if _is_path(name_or_path):
        if os.path.isdir(name_or_path):
            raise _error(
                f"preset '{name_or_path}' is a folder; pass a .toml file or a preset name (list them: cnnvis presets)"
            )
        if not os.path.isfile(name_or_path):  # also refuses FIFOs and devices, which could block or never end
            raise _error(
                f"preset file not found: '{name_or_path}'; pass a .toml file or a preset name "
                "(list them: cnnvis presets)"
            )
        return name_or_path
    path = os.path.join(bundled_dir(), name_or_path + ".toml")
    if not os.path.isfile(path):
        close = did_you_mean(name_or_path, bundled_names()) or ";"
        raise _error(f"unknown preset '{name_or_path}'{close} list them with: cnnvis presets")
    return path


def _read_text(path: str) -> str:
    """The file's text, read as bytes (bounded) and decoded strictly: a preset is never imported or run."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_PRESET_BYTES + 1)
    except OSError as e:
        raise _error(f"cannot read preset '{path}' ({e.strerror or e}); pass a readable .toml file") from None
    if len(data) > MAX_PRESET_BYTES:
        raise _error(
            f"preset '{path}' is over {MAX_PRESET_BYTES // 2**20} MB, too big for a preset; "
            "pass a TOML file of option values"
        )
    try:
        return data.decode("utf-8-sig")  # a BOM from a Windows editor is harmless
    except UnicodeDecodeError as e:
        raise _error(
            f"preset '{path}' is not a UTF-8 TOML file (invalid byte at offset {e.start}); pass a text .toml preset"
        ) from None


def read_preset(name_or_path: str) -> Preset:
    """Parse a preset file (its keys are checked against a command by :func:`resolve_options`)."""
    path = find_preset(name_or_path)
    text = _read_text(path)
    try:
        data = tomllib.loads(text)
    except ValueError as e:  # TOMLDecodeError, or an integer over Python's 4300-digit limit
        raise _error(f"preset '{path}' is not valid TOML ({e}); fix its syntax") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise _error(f"preset '{path}' nests arrays or tables too deeply; a preset holds plain option values") from None
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        close = did_you_mean(unknown[0], TOP_KEYS) or ";"
        raise _error(
            f"preset '{path}' has unknown top-level key {_show(unknown[0])}{close} "
            "use description, command and [options]"
        )
    if not isinstance(data.get("command"), str) or not isinstance(data.get("options", {}), dict):
        raise _error(f"preset '{path}' needs command = \"NAME\" (a string) and an [options] table")
    if not isinstance(data.get("description", ""), str):
        raise _error(f"preset '{path}' has a description that is not a string; write description = \"...\"")
    name = os.path.splitext(os.path.basename(path))[0]
    return Preset(name, data["command"], data.get("description", ""), dict(data.get("options", {})), path)


def _show(value) -> str:
    """A value as TOML spells it (``true``, ``inf``), cut short: messages stay one readable line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int) and abs(value) > 10**40:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bad(spec: OptionSpec, reason: str) -> BadValue:
    """A refusal worded as the option's own type words its refusals."""
    return BadValue(f"Invalid value for {spec.hint}: {reason}")


def _check_number(value, spec: OptionSpec, converted: bool = False) -> None:
    """Refuse what the option's type would take silently (true as 1, 2.5 as 2) or crash on (inf, huge ints)."""
    if isinstance(value, bool) and not converted:
        raise _bad(spec, f"expected {spec.expected}, got {_show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _bad(spec, f"expected a finite number, got {_show(value)}")
    # An integer range names its own range for a huge int; other types would overflow converting it.
    if isinstance(value, int) and abs(value) > INT64_MAX and (converted or not spec.integer):
        raise _bad(spec, f"{_show(value)} is out of range; give a value under 2**63")
    if isinstance(value, float) and spec.integer and not converted:
        raise _bad(spec, f"expected an integer, got {_show(value)}")


def _convert(value, spec: OptionSpec):
    """One TOML value through the option's own conversion, after the checks that conversion does not make."""
    if isinstance(value, (list, dict)):
        raise _bad(spec, f"expected {spec.expected}, got a {'list' if isinstance(value, list) else 'table'}")
    if not isinstance(value, (str, int, float)):  # a TOML date or time
        raise _bad(spec, f"expected {spec.expected}, got the date/time {value}")
    _check_number(value, spec)
    checked = spec.convert(value)
    for v in checked if isinstance(checked, (list, tuple)) else [checked]:
        _check_number(v, spec, converted=True)  # a string such as "inf" or "1e999" converts to inf
    return checked


def _option_value(key: str, value, spec: OptionSpec):
    """The value of one key, shaped as the option takes it: a list for a repeatable option, a bool for a flag."""
    if isinstance(value, dict):
        raise InputError(f"key '{key}' must be a value, not a table")
    if spec.multiple:
        return [_convert(v, spec) for v in (value if isinstance(value, list) else [value])]
    if isinstance(value, list):
        raise InputError(f"key '{key}' takes one value, got a list {_show(value)}")
    if spec.flag:
        if not isinstance(value, bool):
            raise _bad(spec, f"expected true or false, got {_show(value)}")
        return value
    return _convert(value, spec)


def resolve_options(preset: Preset, command: str, specs: Mapping[str, OptionSpec]) -> dict:
    """The preset's options as ``{parameter name: value}``, checked against ``command``, whose options
    are ``specs``: every spelling a preset may use (parameter name, long flag with - or _) -> its spec."""
    if preset.command != command:
        raise _error(
            f"preset '{preset.name}' is for cnnvis {_short(preset.command)}, not {command}; "
            f"use it with cnnvis {_short(preset.command)}"
        )
    out = {}
    for key, value in preset.options.items():
        spec = specs.get(key)
        if spec is None:
            names = sorted({k for k in specs if "_" not in k or k == specs[k].name})
            raise _error(
                f"preset '{preset.name}' has unknown key '{_short(key)}' for {command}"
                f"{did_you_mean(key, names) or ';'} see: cnnvis {command} --help"
            )
        try:
            out[spec.name] = _option_value(_short(key), value, spec)
        except BadValue as e:  # before InputError, its base: a refused value names its key
            raise _error(f"preset '{preset.name}': bad value for '{_short(key)}': {e}") from None
        except InputError as e:
            raise _error(f"preset '{preset.name}': {e}") from None
    return out


def _short(text: str) -> str:
    """A key or name from the file, cut short (a key may be a megabyte long)."""
    return text if len(text) <= 60 else text[:57] + "..."


def _error(message: str) -> InputError:
    """One line whatever the file holds: a key or path may contain newlines."""
    return InputError(" ".join(message.split()))
