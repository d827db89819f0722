"""The command line's spelling of objectives, ``-O KIND:LAYER[:ARGS][@WEIGHT]``: the built-in kinds.

Each kind is declared once below (:func:`cnnvis.objectives.kinds.kind`: name, arguments, a
one-line description and the builder); the parser, the usage list of its error messages and the
help text of ``-O`` (:func:`objective_usage`) all come from these declarations. Penalties on the
image name no layer and are subtracted with a negative weight (lucid's
``objective - 0.05 * L1()``), e.g. ``-O l1:0.5@-0.05``.

No torch at import (the CLI's ``--help`` calls :func:`objective_usage`): each builder imports
its objective class when it runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from cnnvis.defaults import DREAM_GRAD_CLIP, DREAM_L1, DREAM_L2
from cnnvis.errors import InputError
from cnnvis.objectives.kinds import (
    Arg,
    Context,
    integer,
    kind,
    kinds_usage,
    number,
    objective_usage,
    parse_term,
)

if TYPE_CHECKING:
    import numpy as np
    import torch

    from cnnvis.objectives.base import Objective

    Vector = tuple[np.ndarray | dict[int, float], str]  # a direction and the text it was read from

__all__ = ["DEFAULT_COSSIM_POW", "kinds_usage", "objective_usage", "parse_objective", "read_direction"]

DEFAULT_COSSIM_POW = 2.0  # direction-cossim without a power: lucid's tutorials use 2..4


def read_direction(path: str) -> np.ndarray | dict[int, float]:
    """A (C,) direction from a .npy file (never a pickle), or channel weights ``C=W,C=W`` as a
    sparse {channel: weight}."""
    import numpy as np

    if "=" in path and not path.lower().endswith(".npy"):
        try:
            return {int(c): float(w) for c, w in (item.split("=") for item in path.split(","))}
        except ValueError:
            raise InputError(
                f"bad channel weights '{path}'; write C=W pairs separated by commas, e.g. 5=1,42=-0.5"
            ) from None
    if not path.lower().endswith(".npy"):
        raise InputError(f"direction '{path}' must be a .npy array of shape (C,), or channel weights such as 5=1,42=1")
    if not os.path.isfile(path):
        raise InputError(f"direction file '{path}' does not exist; check the path")
    try:
        v = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read direction file '{path}' ({type(e).__name__}); save it with numpy.save") from None
    if v.ndim != 1:
        raise InputError(f"direction file '{path}' holds shape {v.shape}; give a (C,) vector")
    return v


def _vector(text: str) -> Vector:
    """A direction and where it came from (its file name, for the objective's messages)."""
    return read_direction(text), text


# The arguments the kinds share.
C = integer("C", "channel")
XY = (integer("X", "column"), integer("Y", "row"))  # a feature-map position; default its centre
V = Arg("V", "direction", _vector, help="a FILE.npy holding a (C,) vector, or channel weights C=W,C=W such as 5=1,42=1")


@kind("dream", about="amplify the layer's activations")
def _dream(ctx: Context, layer: str) -> Objective:
    from cnnvis.objectives.activation import Dream

    return Dream(layer, ctx.dream_form, ctx.l1_weight, ctx.l2_weight, ctx.grad_clip)


@kind("channel", C, about="the mean of channel C")
def _channel(ctx: Context, layer: str, c: int) -> Objective:
    from cnnvis.objectives.activation import Channel

    return Channel(layer, c)


def _token_index(text: str) -> int:
    from cnnvis.objectives.tokens import parse_token

    return parse_token(text)


T = Arg("T", "token", _token_index, help="cls or a prefix-token index")


@kind("token", T, C, about="channel C of prefix token T (a transformer's class token: cls)")
def _token(ctx: Context, layer: str, token: int, c: int) -> Objective:
    from cnnvis.objectives.tokens import TokenChannel

    return TokenChannel(layer, token, c)


@kind("neuron", C, optional=XY, about="channel C at column X, row Y of the feature map, default its centre")
def _neuron(ctx: Context, layer: str, c: int, x: int | None, y: int | None) -> Objective:
    from cnnvis.objectives.activation import Neuron

    return Neuron(layer, c, x, y, grid=_grid(ctx, layer, x, y))


def _grid(ctx: Context, layer: str, x: int | None, y: int | None) -> tuple[int, int] | None:
    """The map a given position is on (see :class:`Context`), or None (the centre needs none)."""
    return None if ctx.grid_of is None or (x is None and y is None) else ctx.grid_of(layer)


@kind("guide", about="the features the --guide IMAGE has")
def _guide(ctx: Context, layer: str) -> Objective:
    from cnnvis.objectives.activation import Guide

    if ctx.guide_feats is None or layer not in ctx.guide_feats:
        raise InputError(f"objective '{ctx.spec}' needs a guide image; pass --guide IMAGE")
    return Guide(layer, ctx.guide_feats[layer])


@kind("direction", V, about="the dot product of every position's activations with V")
def _direction(ctx: Context, layer: str, v: Vector) -> Objective:
    from cnnvis.objectives.direction import Direction

    return Direction(layer, v[0], source=v[1])


@kind("direction-neuron", V, optional=XY, about="the dot product with V at column X, row Y, default the centre")
def _direction_neuron(ctx: Context, layer: str, v: Vector, x: int | None, y: int | None) -> Objective:
    from cnnvis.objectives.direction import DirectionNeuron

    return DirectionNeuron(layer, v[0], x, y, source=v[1], grid=_grid(ctx, layer, x, y))


@kind(
    "direction-cossim",
    V,
    optional=(number("POWER", "power", DEFAULT_COSSIM_POW),),
    about=f"the dot product with V times the cosine to POWER, default {DEFAULT_COSSIM_POW:g}",
)
def _direction_cossim(ctx: Context, layer: str, v: Vector, power: float) -> Objective:
    from cnnvis.objectives.direction import Direction

    return Direction(layer, v[0], cossim_pow=power, source=v[1])


@kind(
    "caricature",
    optional=(number("POWER", "power", 1.0),),
    about="amplify what the layer sees in the --reference IMAGE: dot product times cosine to POWER, default 1",
)
def _caricature(ctx: Context, layer: str, power: float) -> Objective:
    from cnnvis.objectives.direction import Caricature

    if ctx.reference is None:
        raise InputError(f"objective '{ctx.spec}' needs a reference image; pass --reference IMAGE")
    return Caricature(layer, ctx.reference, power)


# Penalties on the image: no layer; subtract them with a negative @WEIGHT.
@kind(
    "l1",
    optional=(number("CONSTANT", "constant", 0.0),),
    layer=False,
    about="penalty: sum |x - CONSTANT| over the pixels x in [0, 1]",
)
def _l1(ctx: Context, constant: float) -> Objective:
    from cnnvis.objectives.penalties import L1

    return L1(constant)


@kind("l2", optional=(number("CONSTANT", "constant", 0.0),), layer=False, about="penalty: the L2 norm of x - CONSTANT")
def _l2(ctx: Context, constant: float) -> Objective:
    from cnnvis.objectives.penalties import L2

    return L2(constant)


@kind("blur", optional=(number("SIGMA", "sigma", 1.0),), layer=False, about="penalty: the distance to the image's blur")
def _blur(ctx: Context, sigma: float) -> Objective:
    from cnnvis.objectives.penalties import Blur

    return Blur(sigma)


@kind("text", Arg("PROMPT", "prompt"), layer=False, about="CLIP: the cosine of each tile's embedding with PROMPT's")
def _text(ctx: Context, prompt: str) -> Objective:
    from cnnvis.models.clip import CLIP_EXTRA_HINT
    from cnnvis.objectives.text import TextSimilarity

    if ctx.text_encoder is None:
        raise InputError(
            f"-O {ctx.spec}: text objectives need a CLIP model, e.g. --model clip:ViT-B-32 ({CLIP_EXTRA_HINT})"
        )
    if not prompt.strip():
        raise InputError(f'-O {ctx.spec}: the prompt is empty; write text:"a photo of a cat"')
    return TextSimilarity(prompt, ctx.text_encoder([prompt])[0])


def parse_objective(
    spec: str,
    *,
    dream_form: str = "cnnvis",
    l1_weight: float = DREAM_L1,
    l2_weight: float = DREAM_L2,
    grad_clip: float = DREAM_GRAD_CLIP,
    guide_feats: Mapping[str, torch.Tensor] | None = None,
    reference: torch.Tensor | None = None,
    grid_of: Callable[[str], tuple[int, int]] | None = None,
    text_encoder: Callable[[list[str]], torch.Tensor] | None = None,
) -> tuple[float, str | None, Objective]:
    """Parse one CLI objective term. Returns ``(weight, layer, objective)``, layer None for a
    penalty; guide objectives need ``guide_feats[layer]`` (1, C, h, w), caricatures a
    ``reference`` image (1, 3, H, W) in [0, 1]; ``grid_of`` as in :class:`Context`."""
    return parse_term(
        Context(
            spec,
            dream_form=dream_form,
            l1_weight=l1_weight,
            l2_weight=l2_weight,
            grad_clip=grad_clip,
            guide_feats=guide_feats,
            reference=reference,
            grid_of=grid_of,
            text_encoder=text_encoder,
        )
    )
