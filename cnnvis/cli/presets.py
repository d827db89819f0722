"""Presets: TOML files of command defaults, one per look (data, never code).

A preset names the command it is for, a one-line description, and option values::

    description = "cnn-vis gallery: noise grown over 5 sizes from 270x480 to 1080x1920"
    command = "dream"

    [options]
    noise = true
    layer = ["blocks.4.2"]       # the flag's name (--layer) or its parameter name (layers)
    final_size = "1080x1920"     # dashes or underscores

``--preset NAME|FILE`` makes these the command's defaults; flags given on the command line
override them. Values are checked against the option's type; an unknown key is refused with
a close match. Presets are read with :mod:`tomllib` and never run code. The bundled presets
live in the repository's ``presets/`` folder (installed as ``cnnvis.presets``).
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass

import click

from cnnvis.errors import InputError, did_you_mean

TOP_KEYS = ("description", "command", "options")
MAX_PRESET_BYTES = 1 << 20  # a preset is a few lines; a bigger file is a wrong path, not a preset
INT64_MAX = 2**63 - 1  # beyond it torch, numpy and C code overflow


@dataclass(frozen=True)
class Preset:
    """A parsed preset: ``name`` (file stem), ``command``, ``description``, ``options`` (key -> value) and its ``path``."""

    name: str
    command: str
    description: str
    options: dict
    path: str


def bundled_dir() -> str:
    """The folder of the presets that ship with cnnvis."""
    from importlib import resources

    return str(resources.files("cnnvis.presets"))


def bundled_names() -> list[str]:
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
    """Parse a preset file (its keys are checked against a command by :func:`resolve_defaults`)."""
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


def _key_index(command: click.Command) -> dict[str, click.Option]:
    """Every spelling a preset may use for an option: parameter name, long flag with - or _."""
    index: dict[str, click.Option] = {}
    for p in command.params:
        if not isinstance(p, click.Option) or p.name == "preset":
            continue
        index[p.name] = p
        for opt in p.opts + p.secondary_opts:
            if opt.startswith("--"):
                index[opt[2:]] = p
                index[opt[2:].replace("-", "_")] = p
    return index


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


def _expected(param: click.Option) -> str:
    t = param.type
    if isinstance(t, click.types.IntParamType):  # IntRange too
        return "an integer"
    if isinstance(t, click.types.FloatParamType):  # FloatRange too
        return "a number"
    if isinstance(t, click.Choice):
        return "one of " + ", ".join(map(str, t.choices))
    return "a string" if isinstance(t, click.types.StringParamType) else f"a value like {t.name}"


def _check_number(value, param: click.Option, converted: bool = False) -> None:
    """Refuse what click would take silently (true as 1, 2.5 as 2) or crash on (inf, huge ints)."""
    int_type = isinstance(param.type, click.types.IntParamType)
    if isinstance(value, bool) and not converted:
        raise click.BadParameter(f"expected {_expected(param)}, got {_show(value)}", param=param)
    if isinstance(value, float) and not math.isfinite(value):
        raise click.BadParameter(f"expected a finite number, got {_show(value)}", param=param)
    # An IntRange names its own range for a huge int; other types would overflow converting it.
    if isinstance(value, int) and abs(value) > INT64_MAX and (converted or not int_type):
        raise click.BadParameter(f"{_show(value)} is out of range; give a value under 2**63", param=param)
    if isinstance(value, float) and int_type and not converted:
        raise click.BadParameter(f"expected an integer, got {_show(value)}", param=param)


def _convert(value, param: click.Option, ctx: click.Context):
    """One TOML value through the option's click type, after the checks click does not make."""
    if isinstance(value, (list, dict)):
        what = "list" if isinstance(value, list) else "table"
        raise click.BadParameter(f"expected {_expected(param)}, got a {what}", param=param)
    if not isinstance(value, (str, int, float)):  # a TOML date or time
        raise click.BadParameter(f"expected {_expected(param)}, got the date/time {value}", param=param)
    _check_number(value, param)
    checked = param.type.convert(value, param, ctx)
    for v in checked if isinstance(checked, (list, tuple)) else [checked]:
        _check_number(v, param, converted=True)  # a string such as "inf" or "1e999" converts to inf
    return checked


def _option_value(key: str, value, param: click.Option, ctx: click.Context):
    if isinstance(value, dict):
        raise InputError(f"key '{key}' must be a value, not a table")
    if param.multiple:
        return [_convert(v, param, ctx) for v in (value if isinstance(value, list) else [value])]
    if isinstance(value, list):
        raise InputError(f"key '{key}' takes one value, got a list {_show(value)}")
    if param.is_flag:
        if not isinstance(value, bool):
            raise click.BadParameter(f"expected true or false, got {_show(value)}", param=param)
        return value
    return _convert(value, param, ctx)


def resolve_defaults(preset: Preset, command: click.Command, ctx: click.Context) -> dict:
    """The preset's options as ``{parameter name: value}``, type-checked against ``command``."""
    if preset.command != command.name:
        raise _error(
            f"preset '{preset.name}' is for cnnvis {_short(preset.command)}, not {command.name}; "
            f"use it with cnnvis {_short(preset.command)}"
        )
    index = _key_index(command)
    out = {}
    for key, value in preset.options.items():
        param = index.get(key)
        if param is None:
            names = sorted({k for k in index if "_" not in k or k == index[k].name})
            raise _error(
                f"preset '{preset.name}' has unknown key '{_short(key)}' for {command.name}"
                f"{did_you_mean(key, names) or ';'} see: cnnvis {command.name} --help"
            )
        try:
            out[param.name] = _option_value(_short(key), value, param, ctx)
        except InputError as e:
            raise _error(f"preset '{preset.name}': {e}") from None
        except click.BadParameter as e:
            raise _error(f"preset '{preset.name}': bad value for '{_short(key)}': {e.format_message()}") from None
    return out


def _short(text: str) -> str:
    """A key or name from the file, cut short (a key may be a megabyte long)."""
    return text if len(text) <= 60 else text[:57] + "..."


def _error(message: str) -> InputError:
    """One line whatever the file holds: a key or path may contain newlines."""
    return InputError(" ".join(message.split()))


class PresetError(click.ClickException):
    """A bad preset: one ``Error: ...`` line on stderr and exit code 2, like every bad input."""

    exit_code = 2


def _apply(ctx: click.Context, _param, value):
    if value is None:
        return None
    try:
        defaults = resolve_defaults(read_preset(value), ctx.command, ctx)
    except InputError as e:
        raise PresetError(str(e)) from None
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    ctx.meta["cnnvis_preset"] = os.path.abspath(find_preset(value))  # recorded in the manifest
    return value


def preset_option(fn):
    """``--preset NAME|FILE``: eager, so the preset's values become the defaults of the other options."""
    return click.option(
        "--preset",
        default=None,
        is_eager=True,
        expose_value=False,
        callback=_apply,
        help="A preset (bundled name or .toml file) whose values become this command's defaults; flags override it (list: cnnvis presets).",
    )(fn)
