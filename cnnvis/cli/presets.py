"""``--preset NAME|FILE``: a preset's values become the command's defaults, so flags given on the
command line override them. Reading and checking presets is :mod:`cnnvis.io.presets`; this is the
click side: each option described by its click type, and the values fed to click's default map."""

from __future__ import annotations

import os

import click

from cnnvis.errors import InputError
from cnnvis.io.presets import BadValue, OptionSpec, Preset, bundled_names, find_preset, read_preset, resolve_options

__all__ = ["PresetError", "bundled_names", "preset_option", "read_preset", "resolve_defaults"]


def _expected(t: click.ParamType) -> str:
    """A click type in words, for a message."""
    if isinstance(t, click.types.IntParamType):  # IntRange too
        return "an integer"
    if isinstance(t, click.types.FloatParamType):  # FloatRange too
        return "a number"
    if isinstance(t, click.Choice):
        return "one of " + ", ".join(map(str, t.choices))
    return "a string" if isinstance(t, click.types.StringParamType) else f"a value like {t.name}"


def _spec(param: click.Option, ctx: click.Context) -> OptionSpec:
    """What a preset may give ``param``: its click type's conversion, refusals worded as click words them."""

    def convert(value):
        try:
            return param.type.convert(value, param, ctx)
        except click.BadParameter as e:
            raise BadValue(e.format_message()) from None

    integer = isinstance(param.type, click.types.IntParamType)
    return OptionSpec(
        param.name, param.get_error_hint(ctx), _expected(param.type), convert, integer, param.is_flag, param.multiple
    )


def resolve_defaults(preset: Preset, command: click.Command, ctx: click.Context) -> dict:
    """The preset's options as ``{parameter name: value}``, type-checked against ``command``'s options."""
    specs: dict[str, OptionSpec] = {}
    for p in command.params:
        if not isinstance(p, click.Option) or p.name == "preset":
            continue
        spec = specs[p.name] = _spec(p, ctx)
        for opt in p.opts + p.secondary_opts:  # a preset may spell a flag with dashes or underscores
            if opt.startswith("--"):
                specs[opt[2:]] = specs[opt[2:].replace("-", "_")] = spec
    return resolve_options(preset, command.name, specs)


class PresetError(click.ClickException):
    """A bad preset: one ``Error: ...`` line on stderr and exit code 2, like every bad input."""

    exit_code = 2


def _apply(ctx: click.Context, _param, value):
    """The ``--preset`` callback: the preset's values join the context's default map."""
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
        help="A preset (bundled name or .toml file) whose values become this command's defaults; "
        "flags override it (list: cnnvis presets).",
    )(fn)
