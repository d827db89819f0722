"""The command line's spelling of objectives: ``-O KIND:LAYER[:ARGS][@WEIGHT]``.

Kinds: ``dream:L``, ``channel:L:C``, ``neuron:L:C[:X:Y]``, ``guide:L`` (with --guide IMAGE),
``direction:L:V``, ``direction-neuron:L:V[:X:Y]``, ``direction-cossim:L:V[:POWER]`` (V: a
FILE.npy holding a (C,) vector in the layer's channel space, or channel weights ``C=W,C=W``
such as ``5=1,42=1``), ``caricature:L[:POWER]`` (with --reference IMAGE); and penalties on the
image, which name no layer and are subtracted with a negative weight (lucid's
``objective - 0.05 * L1()``): ``l1[:CONSTANT]``, ``l2[:CONSTANT]``, ``blur[:SIGMA]``, e.g.
``-O l1:0.5@-0.05``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import torch

from cnnvis.defaults import DREAM_GRAD_CLIP, DREAM_L1, DREAM_L2
from cnnvis.errors import InputError
from cnnvis.objectives.activation import Channel, Dream, Guide, Neuron
from cnnvis.objectives.base import Objective
from cnnvis.objectives.direction import Caricature, Direction, DirectionNeuron
from cnnvis.objectives.penalties import L1, L2, Blur

USAGE = (
    "use dream:LAYER, channel:LAYER:C, neuron:LAYER:C[:X:Y], guide:LAYER, direction:LAYER:V (V: FILE.npy or C=W,C=W), "
    "direction-neuron:LAYER:V[:X:Y], direction-cossim:LAYER:V[:POWER], caricature:LAYER[:POWER], "
    "or a penalty l1[:CONSTANT], l2[:CONSTANT], blur[:SIGMA]; optionally @WEIGHT (negative to subtract)"
)
# penalties on the image: kind -> (objective, the name of its one optional number)
PENALTIES = {"l1": (L1, "constant"), "l2": (L2, "constant"), "blur": (Blur, "sigma")}
DEFAULT_COSSIM_POW = 2.0  # direction-cossim without a power: lucid's tutorials use 2..4


def read_direction(path: str) -> np.ndarray | dict[int, float]:
    """A (C,) direction from a .npy file (never a pickle), or channel weights ``C=W,C=W`` as a
    sparse {channel: weight}."""
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


def _ints(spec: str, values: list[str]) -> list[int]:
    try:
        return [int(a) for a in values]
    except ValueError:
        raise InputError(f"objective '{spec}' has a non-integer index; {USAGE}") from None


def parse_objective(
    spec: str,
    *,
    dream_form: str = "cnnvis",
    l1_weight: float = DREAM_L1,
    l2_weight: float = DREAM_L2,
    grad_clip: float = DREAM_GRAD_CLIP,
    guide_feats: Mapping[str, torch.Tensor] | None = None,
    reference: torch.Tensor | None = None,
) -> tuple[float, str, Objective]:
    """Parse one CLI objective term. Returns ``(weight, layer, objective)``; guide objectives
    need ``guide_feats[layer]``, caricatures a ``reference`` image (1, 3, H, W)."""
    body, _, weight_s = spec.partition("@")
    try:
        weight = float(weight_s) if weight_s else 1.0
    except ValueError:
        raise InputError(
            f"bad objective weight '{weight_s}' in '{spec}'; write KIND:LAYER[:ARGS]@WEIGHT with a number"
        ) from None
    kind, *args = body.split(":")
    if kind in PENALTIES:
        cls, name = PENALTIES[kind]
        if len(args) > 1:
            raise InputError(f"objective '{spec}' takes at most one number ({name}); {USAGE}")
        try:
            number = [float(args[0])] if args and args[0] else []
        except ValueError:
            raise InputError(f"objective '{spec}' has a non-numeric {name}; {USAGE}") from None
        return weight, None, cls(*number)
    if not args or not args[0]:
        raise InputError(f"objective '{spec}' names no layer; {USAGE}")
    layer, rest = args[0], args[1:]
    if kind.startswith("direction") and rest:
        v = read_direction(rest[0])
        if kind == "direction" and len(rest) == 1:
            return weight, layer, Direction(layer, v, source=rest[0])
        if kind == "direction-neuron" and len(rest) in (1, 3):
            xy = _ints(spec, rest[1:]) or [None, None]
            return weight, layer, DirectionNeuron(layer, v, *xy, source=rest[0])
        if kind == "direction-cossim" and len(rest) in (1, 2):
            try:
                power = float(rest[1]) if len(rest) == 2 else DEFAULT_COSSIM_POW
            except ValueError:
                raise InputError(f"objective '{spec}' has a non-numeric power; {USAGE}") from None
            return weight, layer, Direction(layer, v, cossim_pow=power, source=rest[0])
        raise InputError(f"cannot parse objective '{spec}'; {USAGE}")
    if kind == "caricature" and len(rest) <= 1:
        if reference is None:
            raise InputError(f"objective '{spec}' needs a reference image; pass --reference IMAGE")
        try:
            power = float(rest[0]) if rest else 1.0
        except ValueError:
            raise InputError(f"objective '{spec}' has a non-numeric power; {USAGE}") from None
        return weight, layer, Caricature(layer, reference, power)
    nums = _ints(spec, rest)
    if kind == "dream" and not nums:
        return weight, layer, Dream(layer, dream_form, l1_weight, l2_weight, grad_clip)
    if kind == "channel" and len(nums) == 1:
        return weight, layer, Channel(layer, nums[0])
    if kind == "neuron" and len(nums) in (1, 3):
        return weight, layer, Neuron(layer, nums[0], *(nums[1:] or [None, None]))
    if kind == "guide" and not nums:
        if guide_feats is None or layer not in guide_feats:
            raise InputError(f"objective '{spec}' needs a guide image; pass --guide IMAGE")
        return weight, layer, Guide(layer, guide_feats[layer])
    raise InputError(f"cannot parse objective '{spec}'; {USAGE}")
