"""Options that several recipes share, each declared once here as a ``setting`` factory (the
help text may differ per command, the flag, type and range never do), with the parsers of
their values. No torch at import: ``--help`` reads them."""

from __future__ import annotations

from cnnvis.config import setting
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
    image in pixel space (:class:`cnnvis.pipeline.loop.Render`'s ``refine``)."""
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
    ``image_hw``; ``HxW`` pixels. Returns (H, W)."""
    if size in (None, "model"):
        return (model.input_size, model.input_size)
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
        raise InputError(f"bad --size '{size}'; use model, image or HxW (e.g. 448x448)")
    if min(hw) < model.min_size:
        raise InputError(
            f"--size {size} is below the minimum input {model.min_size} of {model.name}; "
            f"use at least {model.min_size}x{model.min_size}"
        )
    return hw


def given(render_kw: dict) -> dict:
    """Only the render settings a user gave (the rest keep the command's tuned defaults)."""
    return {k: v for k, v in render_kw.items() if v is not None}
