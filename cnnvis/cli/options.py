"""The click options shared by the rendering commands, generated from the config's declarations.

Every :class:`cnnvis.config.RenderConfig` field becomes one option (:func:`render_options`):
its flag, type, choices, range (``click.IntRange``/``FloatRange``, so a bad value fails while
parsing, as one line), help and default all come from the field's :class:`cnnvis.config.Setting`.
``invert`` and ``prefer`` leave every option None (their tuned and layer-dependent defaults,
:mod:`cnnvis.defaults`, then apply) but still show those defaults in --help.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import click

from cnnvis.config import SETTINGS, Kinds, Setting
from cnnvis.recipes.options import format_value

# Commands whose render options default to None: the command applies its own defaults.
TUNED_COMMANDS = ("invert", "prefer")


class RenderOption(click.Option):
    """An option generated from a declared :class:`cnnvis.config.Setting` (kept as ``.setting``),
    whose ``show_default`` text is shown as is: ``[default: 200]``, where click would write
    ``[default: (200)]`` for a string (click >= 8.2; older clicks keep the parentheses)."""

    def __init__(self, *args, setting: Setting | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.setting = setting

    def get_help_extra(self, ctx):
        extra = super().get_help_extra(ctx)
        if isinstance(self.show_default, str) and "default" in extra:
            extra["default"] = self.show_default
        return extra


class KindChoice(click.Choice):
    """The choices of a kind setting (``--param``, ``--optimizer``): the kinds its registry knows
    when a value is checked, so a kind a plugin module registered after the command was built
    is accepted too. Reading the names imports no kind's module (torch): --help stays fast."""

    def __init__(self, kinds: Kinds):
        self.kinds = kinds
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(self.kinds)


def click_type(s: Setting):
    """The click type of a setting: Choice (:class:`KindChoice` for a kind setting),
    IntRange/FloatRange where bounded, else int/float/str (None for a boolean flag)."""
    if s.type is bool:
        return None
    if isinstance(s.allowed, Kinds):
        return KindChoice(s.allowed)
    if s.choices is not None:
        return click.Choice(list(s.choices))
    if s.bounded and s.type in (int, float):
        rng = click.IntRange if s.type is int else click.FloatRange
        return rng(min=s.low, max=s.high, min_open=s.low_open, max_open=s.high_open)
    return s.type


def default_texts(command: str | None) -> dict[str, str]:
    """Field name -> the --help default text of ``command``'s render options where it is not the
    plain RenderConfig default (invert and prefer: every field that has a default); each recipe
    says what its defaults are."""
    from cnnvis.recipes import dream, invert, prefer

    texts = {"invert": invert.render_default_texts, "prefer": prefer.render_default_texts}
    texts["dream"] = dream.render_default_texts
    return texts[command]() if command in texts else {}


def render_options(fn=None, *, command: str | None = None):
    """Attach every RenderConfig option to a command (they arrive as keyword arguments).

    For ``command`` in :data:`TUNED_COMMANDS` every option defaults to None, so the command can
    tell given flags from defaults and apply its own (tuned, layer-dependent) ones; --help still
    shows them. Otherwise the options default to RenderConfig's defaults.
    """
    if fn is None:
        return functools.partial(render_options, command=command)
    tuned = command in TUNED_COMMANDS
    texts = default_texts(command)
    for s in reversed(tuple(SETTINGS.values())):
        default = None if tuned else s.default
        show = texts.get(s.name) or (s.default_text if default is None else True)
        kwargs = {"default": default, "show_default": show or False, "help": s.help, "cls": RenderOption, "setting": s}
        typ = click_type(s)
        if typ is not None:
            kwargs["type"] = typ
        fn = click.option(s.decl, s.name, **kwargs)(fn)
    return fn


def model_options(fn):
    """--model, --weights and --device (:class:`cnnvis.models.options.ModelOptions`)."""
    from cnnvis.models.options import ModelOptions

    return declared_options(ModelOptions)(fn)


def prior_options(fn):
    """The deep generator network prior (:class:`cnnvis.priors.spec.PriorSpec`): the same on every
    command that takes objectives."""
    from cnnvis.priors.spec import PriorSpec

    return declared_options(PriorSpec)(fn)


def output_options(fn):
    """Periodic saves, checkpoints, a progress video and the progress bar
    (:class:`cnnvis.io.outputs.OutputOptions`): the same on every rendering command."""
    from cnnvis.io.outputs import OutputOptions

    return declared_options(OutputOptions)(fn)


def video_options(defaults):
    """The temporal coherence of a video input (:class:`cnnvis.video.coherence.VideoOptions`), with
    --help naming the command's ``defaults`` (a :class:`cnnvis.video.coherence.CoherenceDefaults`).
    They default to None, so that giving them with an image input can be refused."""
    from cnnvis.video.coherence import VideoOptions, default_texts

    return declared_options(VideoOptions, texts=default_texts(defaults))


def declared_options(cls, *, defaults: Mapping[str, object] | None = None, texts: Mapping[str, str] | None = None):
    """Attach the options of a declared settings group (a :func:`cnnvis.config.group` class, e.g. a
    recipe's options) to a command: flags, arguments, types, ranges, help and defaults all come
    from its :class:`cnnvis.config.Setting` declarations, so nothing is written twice.
    ``defaults``: a command's own defaults for some fields (shown in --help), e.g. an output name;
    ``texts``: what --help shows as the default of some fields (a None default that means more).
    A boolean that defaults to False is a plain flag (``--noise``), one that defaults to True a
    ``--x/--no-x`` pair."""
    defaults, texts = dict(defaults or {}), dict(texts or {})

    def attach(fn):
        for s in reversed(cls.settings()):
            fn = _declared_option(s, defaults.get(s.name, s.default), texts.get(s.name))(fn)
        return fn

    return attach


def _declared_option(s: Setting, default, text: str | None = None):
    """The click decorator of one declared setting (``text``: its --help default, if not the value)."""
    if s.argument and s.multiple:  # IMAGES...: one or more
        return click.argument(s.name, nargs=-1, required=True, type=_value_type(s))
    if s.argument:
        return click.argument(s.name, required=not s.optional, default=default, type=_value_type(s))
    decls = [s.flag if s.type is bool and not default else s.decl] + ([s.short] if s.short else [])
    kwargs: dict = {"help": s.help, "cls": RenderOption, "setting": s}
    if s.type is bool:
        kwargs.update(is_flag=True, default=bool(default))
    else:
        kwargs.update(type=_value_type(s), default=default, multiple=s.multiple)
        if s.flag_value is not None:
            kwargs.update(is_flag=False, flag_value=s.flag_value)
    shown = s.default_text if default is None or default == () else format_value(s, default)
    kwargs["show_default"] = text or (False if s.type is bool and not default else shown or False)
    return click.option(*decls, s.name, **kwargs)


def _value_type(s: Setting):
    """The click type of one value of a declared setting (a CLI-parsed ``kind`` first)."""
    if s.kind == "units":
        from cnnvis.cli.units import UNITS

        return UNITS
    return click_type(s)
