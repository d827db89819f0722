"""Options that several recipes share, each declared once here as a ``setting`` factory (the
help text may differ per command, the flag, type and range never do), with the parsers of
their values. No torch at import: ``--help`` reads them."""

from __future__ import annotations

from collections.abc import Mapping

from cnnvis.config import SETTINGS, Setting, setting
from cnnvis.defaults import ACTIVATION_SIDES
from cnnvis.errors import InputError


def layers_option(help: str, **kw):
    """``--layer/-l NAME``, repeatable."""
    return setting((), help, flag="--layer", short="-l", **kw)


def out_option(default: str, help: str):
    """``--out/-o FILE``."""
    return setting(default, help, short="-o")


def activation_option(help: str):
    """``--activation pre|post``: a layer's features before or after its activation."""
    return setting("pre", help, choices=ACTIVATION_SIDES)


def size_option(help: str):
    """``--size model|image|HxW`` (parsed by :func:`parse_size`)."""
    return setting(None, help, default_text="model")


def objectives_option(help: str):
    """``-O/--objective KIND:LAYER[:ARGS][@WEIGHT]``, repeatable (:mod:`cnnvis.objectives.spec`)."""
    return setting((), help, flag="--objective", short="-O")


def reference_option():
    """``--reference IMAGE`` of caricature objectives."""
    return setting(None, "The reference image of caricature:LAYER objectives.")


def channel_option(help: str):
    """``--channel/-c`` a channel, a list or ranges (:func:`cnnvis.recipes.units.parse_units`)."""
    return setting(None, help, kind="units", short="-c")


def position_option(axis: str, help: str):
    """``--x`` / ``--y``: a neuron's column / row in the feature map."""
    return setting(None, help, flag=f"--{axis}", low=0)


def dgn_refine_option(default: float):
    """``--dgn-refine``: the share of a ``--prior dgn`` run's steps that refine the generator's
    image in pixel space (:class:`cnnvis.params.generator.GeneratorStages`'s ``refine``)."""
    return setting(
        default,
        "With --prior dgn: the share of the steps, at the end, that refine the generator's image in pixel space "
        "with the command's pixel defaults (0 = the latent only).",
        low=0,
        high=1,
        high_open=True,
    )


def parse_size(size: str | None, model, image_hw: tuple[int, int] | None) -> tuple[int, int]:
    """``--size``: ``model`` (default): the model input, square; ``image``: the image's own size
    ``image_hw``; ``fit``: the image's aspect, its longer side at the model input (a video's
    frames, by default); ``HxW`` pixels. Returns (H, W)."""
    if size in (None, "model"):
        return (model.input_size, model.input_size)
    if size == "fit" and image_hw is not None:
        k = model.input_size / max(image_hw)
        return tuple(max(model.min_size, round(side * k)) for side in image_hw)
    if size == "image":
        if image_hw is None:
            raise InputError("--size image needs an input image; give --size HxW with --features")
        return image_hw
    h, sep, w = size.lower().partition("x")
    try:
        hw = (int(h), int(w))
    except ValueError:
        hw = None
    if not sep or hw is None or min(hw) < 1:
        raise InputError(f"bad --size '{size}'; use model, image, fit or HxW (e.g. 448x448)")
    if min(hw) < model.min_size:
        raise InputError(
            f"--size {size} is below the minimum input {model.min_size} of {model.name}; "
            f"use at least {model.min_size}x{model.min_size}"
        )
    return hw


def given(render_kw: dict) -> dict:
    """Only the render settings a user gave (the rest keep the command's tuned defaults)."""
    return {k: v for k, v in render_kw.items() if v is not None}


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


def describe_default(
    s: Setting, base, by_optimizer: Mapping[str, Mapping], variants: list[tuple[str, Mapping]]
) -> str | None:
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


def plain_defaults() -> dict:
    """Field name -> the plain RenderConfig default."""
    return {n: s.default for n, s in SETTINGS.items()}


def tuned_default_texts(
    base: Mapping, by_optimizer: Mapping, variants: list, extra: Mapping[str, str]
) -> dict[str, str]:
    """Field name -> --help default text of a tuned command: ``base`` (its defaults), the values
    another optimizer gives (``by_optimizer``) and those of each (condition, table) variant."""
    texts = {n: describe_default(s, base[n], by_optimizer, variants) for n, s in SETTINGS.items()}
    texts.update(extra)
    return {n: t for n, t in texts.items() if t is not None}
