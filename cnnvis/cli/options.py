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

from cnnvis import defaults as D
from cnnvis.config import SETTINGS, Setting

# Commands whose render options default to None: the command applies its own defaults.
TUNED_COMMANDS = ("invert", "prefer")


class RenderOption(click.Option):
    """An option whose ``show_default`` text is shown as is: ``[default: 200]``, where click
    would write ``[default: (200)]`` for a string (click >= 8.2; older clicks keep the parentheses)."""

    def get_help_extra(self, ctx):
        extra = super().get_help_extra(ctx)
        if isinstance(self.show_default, str) and "default" in extra:
            extra["default"] = self.show_default
        return extra


def click_type(s: Setting):
    """The click type of a setting: Choice, IntRange/FloatRange where bounded, else int/float/str
    (None for a boolean flag)."""
    if s.type is bool:
        return None
    if s.choices is not None:
        return click.Choice(list(s.choices))
    if s.bounded and s.type in (int, float):
        rng = click.IntRange if s.type is int else click.FloatRange
        return rng(min=s.low, max=s.high, min_open=s.low_open, max_open=s.high_open)
    return s.type


def format_value(s: Setting, v) -> str:
    """A default as --help shows it: ``200``, ``0.1``, ``0.00784``, ``no-shift``, or the setting's
    ``default_text`` for None."""
    if v is None:
        return s.default_text or "none"
    if s.type is bool:
        return s.flag[2:] if v else "no-" + s.flag[2:]
    if isinstance(v, float):
        return repr(v) if round(v, 4) == v else f"{v:.3g}"
    return str(v)


def _describe(s: Setting, base, by_optimizer: Mapping[str, Mapping], variants: list[tuple[str, Mapping]]) -> str | None:
    """``BASE; V1 COND1; V2 COND2`` with the variants that change the setting (None: nothing to show)."""
    parts = [format_value(s, base)]
    alts: dict[str, list[str]] = {}
    for optimizer, table in by_optimizer.items():
        if table[s.name] != base:
            alts.setdefault(format_value(s, table[s.name]), []).append(optimizer)
    parts += [f"{value} with --optimizer {' or '.join(names)}" for value, names in alts.items()]
    parts += [
        f"{format_value(s, table[s.name])} {cond}"
        for cond, table in variants
        if s.name in table and table[s.name] != base
    ]
    return "; ".join(parts) if base is not None or s.default_text or len(parts) > 1 else None


def default_texts(command: str | None) -> dict[str, str]:
    """Field name -> the --help default text of ``command``'s render options where it is not the
    plain RenderConfig default (invert and prefer: every field that has a default)."""
    plain = {n: s.default for n, s in SETTINGS.items()}
    by_optimizer: dict[str, Mapping] = {}
    if command == "invert":
        base = {**plain, **D.INVERT_DEFAULTS}
        optimizer = D.INVERT_DEFAULTS["optimizer"]
        by_optimizer = {o: {**base, **d} for o, d in D.INVERT_OPTIMIZER_DEFAULTS.items() if o != optimizer}
        base.update(D.INVERT_OPTIMIZER_DEFAULTS[optimizer])
        variants = [
            (f"at layers of stride <= {D.SHALLOW_STRIDE}", D.INVERT_SHALLOW_DEFAULTS),
            (f"at layers of stride >= {D.DEEP_STRIDE} on pixels", D.INVERT_DEEP_DEFAULTS),
            (f"on the last layers with {optimizer}", D.INVERT_TOP_DEFAULTS),
            ("with --prior dgn", D.DGN_DEFAULTS),
        ]
        extra = {"shift": "no-shift; shift for an image larger than the model input"}
    elif command == "prefer":
        base = {**plain, **D.PREFER_DEFAULTS}
        variants = [
            ("with --rf-mask", D.PREFER_MASK_DEFAULTS),
            *((f"with --param {k}", v) for k, v in D.PREFER_PARAM_DEFAULTS.items()),
            ("with --interpolate", D.PREFER_INTERPOLATE_DEFAULTS),
            ("with --prior dgn", D.DGN_DEFAULTS),
        ]
        extra = {"tile": "the image size (one tile)"}
    elif command == "dream":
        return {
            "octaves": f"{D.DEFAULT_OCTAVES} when no size flag or --zoom-frames is given",
            "latent_lr": f"--lr; {format_value(SETTINGS['latent_lr'], D.DGN_DEFAULTS['latent_lr'])} with --prior dgn",
        }
    else:
        return {}
    texts = {n: _describe(s, base[n], by_optimizer, variants) for n, s in SETTINGS.items()}
    texts.update(extra)
    return {n: t for n, t in texts.items() if t is not None}


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
        kwargs = {"default": default, "show_default": show or False, "help": s.help, "cls": RenderOption}
        typ = click_type(s)
        if typ is not None:
            kwargs["type"] = typ
        fn = click.option(s.decl, s.name, **kwargs)(fn)
    return fn


def model_options(fn):
    fn = click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:N, mps or auto.")(fn)
    fn = click.option(
        "--weights", default=None, help="Local state-dict file, or 'random' [default: the pretrained weights]."
    )(fn)
    fn = click.option(
        "--model",
        "-m",
        default="efficientnet-lite0",
        show_default=True,
        help="Registry name, timm:NAME, package.module:factory, a TorchScript file, a Caffe deploy .prototxt (--weights its .caffemodel) or a convert-caffe file.",
    )(fn)
    return fn


def dgn_refine_option(default: float):
    """--dgn-refine: the share of a --prior dgn run's steps that refine the generator's image in
    pixel space under the command's pixel defaults (cnnvis.pipeline.loop.Render's refine)."""
    return click.option(
        "--dgn-refine",
        type=click.FloatRange(0, 1, max_open=True),
        default=default,
        show_default=True,
        help="With --prior dgn: the share of the steps, at the end, that refine the generator's image in pixel space with the command's pixel defaults (0 = the latent only).",
    )


def prior_options(fn):
    """The deep generator network prior: the same on every command that takes objectives."""
    fn = click.option(
        "--generator-fit",
        type=click.Choice(["crop", "resize"]),
        default="crop",
        show_default=True,
        help="A fixed-size generator's image meets the canvas by centre crop or resize.",
    )(fn)
    fn = click.option(
        "--dgn-max-side",
        type=int,
        default=None,
        help="Largest canvas side optimized through the generator; larger sizes refine pixels [default: its output side, 1024 for spatial generators].",
    )(fn)
    fn = click.option(
        "--latent-init",
        type=click.Choice(["auto", "zeros", "noise", "image"]),
        default="auto",
        show_default=True,
        help="Initial latent: the encoding of the start image (auto when there is one), zeros or noise.",
    )(fn)
    fn = click.option(
        "--latent-bound",
        default=None,
        help="Per-channel upper bounds of the latent (.txt or .npy, icnn's act_range), or 'none' [default: the generator file's].",
    )(fn)
    fn = click.option(
        "--generator",
        default=None,
        help="Generator file (.pt from train-generator or convert-caffe) [default: the shipped demo generator for efficientnet-lite0].",
    )(fn)
    fn = click.option(
        "--prior",
        type=click.Choice(["none", "dgn"]),
        default="none",
        show_default=True,
        help="dgn: optimize a deep generator network's latent instead of pixels (Nguyen et al. 2016).",
    )(fn)
    return fn


def output_options(fn):
    """Periodic saves, a progress video and the progress bar: the same on every rendering command."""
    fn = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")(fn)
    fn = click.option("--video-every", type=int, default=1, show_default=True, help="Steps between video frames.")(fn)
    fn = click.option("--video", default=None, help="Write the progress as a .gif or .mp4.")(fn)
    fn = click.option(
        "--save-every", type=int, default=0, help="Also write NAME_SIZE_STEP.EXT every N steps (0 = never)."
    )(fn)
    fn = click.option(
        "--jpeg-quality", type=click.IntRange(1, 100), default=95, show_default=True, help="Quality of .jpg outputs."
    )(fn)
    fn = click.option(
        "--checkpoint-every",
        type=int,
        default=0,
        help="Write NAME.ckpt every N steps, every N frames for a video input (0 = only on Ctrl-C); finish it with cnnvis resume.",
    )(fn)
    return fn


def video_options(fn=None, *, blend_default: str = "0.85", temporal_default: str = "10"):
    """Temporal coherence of a video input (:mod:`cnnvis.video.coherence`): the same on dream and invert.
    They default to None, so that giving them with an image input can be refused."""
    if fn is None:
        return functools.partial(video_options, blend_default=blend_default, temporal_default=temporal_default)
    fn = click.option(
        "--temporal-weight",
        "temporal",
        type=click.FloatRange(0),
        default=None,
        show_default=temporal_default,
        cls=RenderOption,
        help="Video input with a flow: weight of the temporal loss that holds each pixel the flow carries near the previous result (Ruder et al. 2016); 0 = the start only.",
    )(fn)
    fn = click.option(
        "--blend",
        type=click.FloatRange(0, 1),
        default=None,
        show_default=blend_default,
        cls=RenderOption,
        help="Video input: weight of the previous frame's (warped) result in a frame's start, in [0, 1]; the rest is the new frame.",
    )(fn)
    fn = click.option(
        "--flow",
        type=click.Choice(["dis", "farneback", "none"]),
        default=None,
        show_default="dis",
        cls=RenderOption,
        help="Video input: carry each frame's result to the next along the optical flow (OpenCV DIS or Farneback), "
        "trusted only where forward and backward flow agree; none: blend the previous result by a constant.",
    )(fn)
    return fn
