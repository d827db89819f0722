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

import os
import tomllib
from dataclasses import dataclass

import click

from cnnvis.errors import InputError, did_you_mean

TOP_KEYS = ("description", "command", "options")


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


def find_preset(name_or_path: str) -> str:
    """A preset file: a path to a ``.toml`` file, or the name of a bundled preset."""
    if name_or_path.endswith(".toml") or os.sep in name_or_path:
        if not os.path.isfile(name_or_path):
            raise InputError(f"preset file not found: '{name_or_path}'; pass a .toml file or a preset name (list them: cnnvis presets)")
        return name_or_path
    path = os.path.join(bundled_dir(), name_or_path + ".toml")
    if not os.path.isfile(path):
        raise InputError(f"unknown preset '{name_or_path}'{did_you_mean(name_or_path, bundled_names()) or ';'} list them with: cnnvis presets")
    return path


def read_preset(name_or_path: str) -> Preset:
    """Parse a preset file (its keys are checked against a command by :func:`resolve_defaults`)."""
    path = find_preset(name_or_path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"preset '{path}' is not valid TOML ({e}); fix its syntax") from None
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise InputError(f"preset '{path}' has unknown top-level key '{unknown[0]}'{did_you_mean(unknown[0], TOP_KEYS) or ';'} use description, command and [options]")
    if not isinstance(data.get("command"), str) or not isinstance(data.get("options", {}), dict):
        raise InputError(f"preset '{path}' needs command = \"NAME\" (a string) and an [options] table")
    return Preset(os.path.splitext(os.path.basename(path))[0], data["command"], str(data.get("description", "")), dict(data.get("options", {})), path)


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


def resolve_defaults(preset: Preset, command: click.Command, ctx: click.Context) -> dict:
    """The preset's options as ``{parameter name: value}``, type-checked against ``command``."""
    if preset.command != command.name:
        raise InputError(f"preset '{preset.name}' is for cnnvis {preset.command}, not {command.name}; use it with cnnvis {preset.command}")
    index = _key_index(command)
    out = {}
    for key, value in preset.options.items():
        param = index.get(key)
        if param is None:
            names = sorted({k for k in index if "_" not in k or k == index[k].name})
            raise InputError(f"preset '{preset.name}' has unknown key '{key}' for {command.name}{did_you_mean(key, names) or ';'} see: cnnvis {command.name} --help")
        if isinstance(value, dict):
            raise InputError(f"preset '{preset.name}': key '{key}' must be a value, not a table")
        if param.multiple and not isinstance(value, list):
            value = [value]
        if not param.multiple and isinstance(value, list):
            raise InputError(f"preset '{preset.name}': key '{key}' takes one value, got a list {value}")
        try:
            if param.multiple:
                checked = [param.type.convert(v, param, ctx) for v in value]
            elif param.is_flag and not isinstance(value, bool):
                raise click.BadParameter(f"expected true or false, got {value!r}")
            else:
                checked = param.type.convert(value, param, ctx)
        except click.BadParameter as e:
            raise InputError(f"preset '{preset.name}': bad value for '{key}': {e.format_message()}") from None
        if not param.multiple and param.is_flag:
            checked = bool(value)
        out[param.name] = checked
    return out


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
    return click.option("--preset", default=None, is_eager=True, expose_value=False, callback=_apply,
                        help="A preset (bundled name or .toml file) whose values become this command's defaults; flags override it (list: cnnvis presets).")(fn)
