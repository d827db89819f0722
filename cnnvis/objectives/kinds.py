"""The registry of objective kinds: each ``-O`` kind declared once, with its arguments and usage.

A kind (:class:`ObjectiveKind`) is a name, whether it takes a layer, its arguments (required,
then an optional group given all together or not at all), a one-line description and the
builder that makes the :class:`cnnvis.objectives.base.Objective`. From the registry come the
parser of ``KIND[:LAYER][:ARGS][@WEIGHT]`` (:func:`parse_term`), the usage list of its error
messages (:func:`kinds_usage`) and the help text of ``-O`` (:func:`objective_usage`). The
built-in kinds are declared in :mod:`cnnvis.objectives.spec`; import that module (not this one)
to parse or to show usage, so that they are registered. Adding a kind is one declaration::

    @kind("mean", about="the layer's mean activation")
    def _mean(ctx, layer):
        return Mean(layer)

No torch here (the builders import their objective classes when called): the CLI's ``--help``
reads the usage without loading torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cnnvis.defaults import DREAM_GRAD_CLIP, DREAM_L1, DREAM_L2
from cnnvis.errors import InputError, did_you_mean

if TYPE_CHECKING:
    import torch

    from cnnvis.objectives.base import Objective

_NOUNS = {"integer": "an integer", "numeric": "a number"}  # Arg.expect -> its noun in messages
_COUNTS = ("none", "one", "two", "three", "four", "five")


@dataclass(frozen=True)
class Arg:
    """One argument of a kind after the layer.

    Attributes:
        name: its placeholder in the usage, e.g. ``C`` in ``channel:LAYER:C``.
        about: what it is, in error messages, e.g. ``channel``.
        parse: text -> value; a ``ValueError`` becomes an InputError naming the argument (raise
            InputError for a message of your own).
        expect: ``integer`` or ``numeric`` for numbers (their error says so), else ``""``.
        default: the value of an optional argument that is left out.
        help: a short gloss for the usage list (``FILE.npy or C=W,C=W``); ``""`` for none.
    """

    name: str
    about: str
    parse: Callable[[str], Any] = str
    expect: str = ""
    default: Any = None
    help: str = ""


def integer(name: str, about: str, default: int | None = None) -> Arg:
    """An integer argument (a channel, a position)."""
    return Arg(name, about, int, "integer", default)


def number(name: str, about: str, default: float | None = None) -> Arg:
    """A real-number argument (a power, a constant)."""
    return Arg(name, about, float, "numeric", default)


@dataclass(frozen=True)
class Context:
    """What a builder may need besides its arguments: the term as written (for messages) and the
    command's settings.

    Attributes:
        spec: the whole term, e.g. ``channel:L:3@0.5``.
        dream_form, l1_weight, l2_weight, grad_clip: the dream settings of ``dream:LAYER``.
        guide_feats: layer -> the guide image's activations (1, C, h, w), for ``guide:LAYER``.
        reference: the reference image (1, 3, H, W) in [0, 1], for ``caricature:LAYER``.
        grid_of: layer -> its map (H, W) at the model's input size, on which neuron positions are
            given (:class:`cnnvis.objectives.position.MapPosition`); None: per tile.
        text_encoder: prompts -> unit-length embeddings (n, D), a ``clip:`` model's; None for
            other models (``text:`` then says to use one).
    """

    spec: str
    dream_form: str = "cnnvis"
    l1_weight: float = DREAM_L1
    l2_weight: float = DREAM_L2
    grad_clip: float = DREAM_GRAD_CLIP
    guide_feats: Mapping[str, torch.Tensor] | None = None
    reference: torch.Tensor | None = None
    grid_of: Callable[[str], tuple[int, int]] | None = None
    text_encoder: Callable[[list[str]], torch.Tensor] | None = None


@dataclass(frozen=True)
class ObjectiveKind:
    """One ``-O`` kind: ``build(ctx, layer, *values)`` (no ``layer`` when ``layer`` is False)
    makes its objective from the converted arguments, optional ones at their defaults."""

    name: str
    build: Callable[..., Objective]
    args: tuple[Arg, ...] = ()
    optional: tuple[Arg, ...] = ()
    about: str = ""
    layer: bool = True

    @property
    def arguments(self) -> tuple[Arg, ...]:
        """Every argument after the layer: the required ones, then the optional group."""
        return self.args + self.optional

    @property
    def form(self) -> str:
        """Its spelling, e.g. ``neuron:LAYER:C[:X:Y]`` or ``l1[:CONSTANT]``."""
        head = ":".join([self.name, *(["LAYER"] if self.layer else []), *(a.name for a in self.args)])
        return head + (f"[:{':'.join(a.name for a in self.optional)}]" if self.optional else "")

    def arity(self) -> str:
        """How many arguments it takes, in words: ``one or three numbers``, ``at most one number``."""
        n, m = len(self.args), len(self.arguments)
        if m == 0:
            return "no arguments"
        noun = "number" if all(a.expect for a in self.arguments) else "argument"
        noun += "s" if m > 1 else ""
        if n == m:
            return f"{_count(n)} {noun}"
        return f"at most one {noun}" if n == 0 and m == 1 else f"{_count(n)} or {_count(m)} {noun}"

    def values(self, spec: str, fields: list[str]) -> list[Any]:
        """The converted arguments, optional ones left out at their defaults; InputError on a
        wrong count or a value that does not convert."""
        if len(fields) not in (len(self.args), len(self.arguments)):
            where = " after the layer" if self.layer else ""
            raise InputError(f"objective '{spec}' takes {self.arity()}{where}; write {self.form}")
        given = [_convert(spec, self, a, text) for a, text in zip(self.arguments, fields)]
        return given + [a.default for a in self.arguments[len(fields) :]]


def _count(n: int) -> str:
    return _COUNTS[n] if n < len(_COUNTS) else str(n)


def _convert(spec: str, k: ObjectiveKind, arg: Arg, text: str) -> Any:
    try:
        return arg.parse(text)
    except InputError:
        raise
    except ValueError:
        what = f"a non-{arg.expect} {arg.about}" if arg.expect else f"a bad {arg.about}"
        fix = f" with {arg.name} {_NOUNS[arg.expect]}" if arg.expect in _NOUNS else ""
        raise InputError(f"objective '{spec}' has {what} '{text}'; write {k.form}{fix}") from None


KINDS: dict[str, ObjectiveKind] = {}  # name -> kind, in the order of the usage text


def register(k: ObjectiveKind) -> ObjectiveKind:
    """Add a kind; a name already taken is a programming error (ValueError)."""
    if k.name in KINDS:
        raise ValueError(f"objective kind '{k.name}' is already registered")
    if not k.name or any(c in k.name for c in ":@"):
        raise ValueError(f"objective kind name '{k.name}' must be non-empty without ':' or '@'")
    KINDS[k.name] = k
    return k


def unregister(name: str) -> None:
    """Remove a kind (tests that register a throwaway one)."""
    del KINDS[name]


def kind(name: str, *args: Arg, optional: tuple[Arg, ...] = (), about: str = "", layer: bool = True):
    """Decorator: register the decorated builder as kind ``name`` (see :class:`ObjectiveKind`)."""

    def declare(build: Callable[..., Objective]) -> Callable[..., Objective]:
        register(ObjectiveKind(name, build, tuple(args), tuple(optional), about, layer))
        return build

    return declare


def _glossary(kinds: Iterable[ObjectiveKind]) -> str:
    """``V: FILE.npy or C=W,C=W``: each argument with a gloss, once."""
    seen = {a.name: a.help for k in kinds for a in k.arguments if a.help}
    return "; ".join(f"{n}: {h}" for n, h in seen.items())


def kinds_usage() -> str:
    """The usage list of error messages: ``use dream:LAYER, channel:LAYER:C, ... or blur[:SIGMA],
    optionally @WEIGHT (negative to subtract); V: ...``."""
    forms = [k.form for k in KINDS.values()]
    listed = ", ".join(forms[:-1]) + f" or {forms[-1]}" if len(forms) > 1 else "".join(forms)
    gloss = _glossary(KINDS.values())
    return f"use {listed}, optionally @WEIGHT (negative to subtract)" + (f"; {gloss}" if gloss else "")


def objective_usage(names: Iterable[str] | None = None) -> str:
    """The help text of ``-O`` (one paragraph): every registered kind with what it does, or only
    ``names`` in that order (a KeyError names an unknown one)."""
    kinds = list(KINDS.values()) if names is None else [KINDS[n] for n in names]
    items = "; ".join(f"{k.form} ({k.about})" if k.about else k.form for k in kinds)
    gloss = _glossary(kinds)
    return (
        "KIND:LAYER[:ARGS][@WEIGHT], repeatable; the terms add up, each times its WEIGHT (default 1, "
        f"negative to subtract). Kinds: {items}." + (f" {gloss}." if gloss else "")
    )


def _split_weight(spec: str) -> tuple[str, float]:
    body, _, weight_s = spec.partition("@")
    try:
        return body, float(weight_s) if weight_s else 1.0
    except ValueError:
        raise InputError(
            f"bad objective weight '{weight_s}' in '{spec}'; write KIND:LAYER[:ARGS]@WEIGHT with a number"
        ) from None


def parse_term(ctx: Context) -> tuple[float, str | None, Objective]:
    """``ctx.spec`` as ``(weight, layer, objective)``; the layer is None for kinds without one
    (penalties on the image). Every mistake is an InputError naming the term and the fix."""
    spec = ctx.spec
    body, weight = _split_weight(spec)
    name, *fields = body.split(":")
    k = KINDS.get(name)
    if k is None:
        # a near miss names its fix; anything else gets the whole list
        fix = did_you_mean(name, KINDS) or f"; {kinds_usage()}"
        raise InputError(f"unknown objective kind '{name}' in '{spec}'{fix}")
    if fields and not fields[-1]:
        fields.pop()  # a dangling colon (``l1:``) adds no argument
    if not k.layer:
        return weight, None, k.build(ctx, *k.values(spec, fields))
    if not fields or not fields[0]:
        raise InputError(f"objective '{spec}' names no layer; write {k.form}")
    layer = fields[0]
    return weight, layer, k.build(ctx, layer, *k.values(spec, fields[1:]))
