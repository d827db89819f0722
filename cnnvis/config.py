"""Every default of a render, once: a frozen config the CLI and the API both build.

Each setting is declared once, in one of a few small frozen groups, with its default, its help
text, its choices or numeric range and, where it differs from ``--field-name``, its CLI flag
(see :func:`setting`). Validation is generic from that declaration; the CLI's options
(:mod:`cnnvis.cli.options`) are generated from it. ``--param`` and ``--optimizer`` take the
kinds registered in :data:`PARAMS` and :data:`OPTIMIZERS` (:class:`Kinds`) by the modules that
define them, and the chosen kinds check the settings they depend on.

:class:`RenderConfig` bundles the groups and reads flat: ``RenderConfig(steps=5, lr=0.1)``,
``cfg.lr``, ``cfg.as_dict()``; the groups are ``cfg.sizes``, ``cfg.tiling``, ``cfg.transforms``,
``cfg.parameterization``, ``cfg.optim``, ``cfg.regularizers``, ``cfg.pixel_ops`` and ``cfg.out``
(or ``cfg.groups[name]``).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

from cnnvis.errors import InputError


class Kinds:
    """The kinds of one choice setting (``--param``, ``--optimizer``): name -> what the kind's own
    module declares about it (a :class:`cnnvis.params.base.Param` class, an
    :class:`cnnvis.params.optim.OptimizerKind`), filled in by those modules with :meth:`add`.

    The kinds' modules import torch and sit above this one in the import layers, so they register
    here and this module never imports them. ``shipped`` names the kinds cnnvis itself ships, so
    that validation and --help know them before their modules are imported (tests/params checks
    it against what registers); any other registered kind (a plugin's) is a valid choice too.
    Iterating gives the names: ``shipped`` first, then the others in registration order.
    """

    def __init__(self, shipped: tuple[str, ...]):
        self.shipped = tuple(shipped)
        self._entries: dict[str, object] = {}

    def add(self, name: str, entry: object) -> None:
        """Register ``entry`` as the kind ``name`` (a later entry of the same name replaces it)."""
        self._entries[name] = entry

    def remove(self, name: str) -> None:
        """Forget the kind ``name`` (a plugin unloaded; a shipped name stays a valid choice)."""
        self._entries.pop(name, None)

    def get(self, name):
        """The entry registered as ``name``, or None (unknown, or its module not imported yet)."""
        return self._entries.get(name) if isinstance(name, str) else None

    def registered(self) -> dict[str, object]:
        """Name -> entry of every kind registered so far, in :meth:`__iter__` order."""
        return {n: self._entries[n] for n in self if n in self._entries}

    def __iter__(self):
        return iter(self.shipped + tuple(n for n in self._entries if n not in self.shipped))

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and (name in self._entries or name in self.shipped)

    def __len__(self) -> int:
        return len(tuple(iter(self)))

    def __repr__(self) -> str:
        return f"Kinds({tuple(self)})"


# The choices of every choice setting, defined here only (imported where needed). --param and
# --optimizer take the kinds their modules register (cnnvis.params, cnnvis.params.optim).
OPTIMIZERS = Kinds(shipped=("rmsprop", "sgd", "adam", "gd", "lbfgs"))
PARAMS = Kinds(shipped=("pixel", "fft", "cppn", "lowres", "maco"))
TV_OPERATORS = ("naive", "sobel", "sobel_squish")
SIZE_SPACINGS = ("geometric", "linear")
P_TARGETS = ("auto", "zero", "init")
OUTPUT_MODES = ("clip", "rescale")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SWITCHES = ("auto", "on", "off")

_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


@dataclass(frozen=True)
class Setting:
    """What one config field means. ``setting()`` declares it; the group class fills in ``name``,
    ``group``, ``type``, ``optional`` and ``default`` from the field itself.

    ``low``/``high`` bound a number (``low_open``/``high_open``: the bound itself is excluded);
    ``note`` says why, in error messages; ``default_text`` says what a None default means, in
    --help; ``flag`` is the long CLI flag when it is not ``--field-name``; ``short`` its one-letter
    form (``-o``); ``kind`` a value syntax the CLI parses itself (``"units"``: ``0,5,9`` or
    ``0-15``); ``argument``: a positional argument, not a flag; ``multiple``: a repeatable flag
    (the field is a ``tuple[...]``, filled in from its type). ``allowed``: the values a choice
    setting takes, a tuple or the :class:`Kinds` registry of a kind setting (read them as
    :attr:`choices`).
    """

    help: str
    allowed: tuple[str, ...] | Kinds | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    note: str | None = None
    default_text: str | None = None
    flag_name: str | None = None
    short: str | None = None
    kind: str | None = None
    argument: bool = False
    multiple: bool = False
    flag_value: object = None
    name: str = ""
    group: str = ""
    type: type = object
    optional: bool = False
    default: object = None
    form: Callable[[str], None] | None = None  # checks a text value's syntax (a size), before anything loads

    @property
    def flag(self) -> str:
        """The long CLI flag, e.g. ``--tv-weight`` or ``--output-mode``."""
        return self.flag_name or "--" + self.name.replace("_", "-")

    @property
    def decl(self) -> str:
        """The click declaration: the flag, or ``--x/--no-x`` for a boolean."""
        return f"{self.flag}/--no-{self.flag[2:]}" if self.type is bool else self.flag

    @property
    def bounded(self) -> bool:
        return self.low is not None or self.high is not None

    @property
    def choices(self) -> tuple[str, ...] | None:
        """The values a choice setting takes (a kind setting's: the kinds known now, plugins
        included), or None for any value of its type."""
        return None if self.allowed is None else tuple(self.allowed)

    def describe_range(self) -> str:
        """``in [0, 1)``, ``> 0``, ``>= 1``, ..."""
        lo, hi = _num(self.low), _num(self.high)
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{lo}, {hi}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {lo}"
        return f"{'<' if self.high_open else '<='} {hi}"

    def check(self, value) -> None:
        """Raise :class:`InputError` (one line: the flag, the value, the fix) unless ``value`` fits."""
        if self.multiple and isinstance(value, (tuple, list)):
            for item in value:
                dataclasses.replace(self, multiple=False).check(item)
            return
        if value is None:
            if self.optional:
                return
            raise InputError(f"{self.flag} needs a value, got None; e.g. {self.flag} {_show_default(self)}")
        if self.form is not None and isinstance(value, str):
            self.form(value)
        if self.allowed is not None:
            if value not in self.allowed:
                raise InputError(f"unknown {self.flag} '{value}'; use one of {', '.join(self.allowed)}")
            return
        if self.type in (int, float):
            self._check_number(value)

    def _check_number(self, value) -> None:
        why = f" ({self.note})" if self.note else ""
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            what = f"a finite number {self.describe_range()}" if self.bounded else "a finite number"
            raise InputError(f"{self.flag} must be {what}{why}, got {value!r}")
        if self.bounded and not self.contains(value):
            raise InputError(f"{self.flag} must be {self.describe_range()}{why}, got {value}")

    def contains(self, value) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True


def setting(
    default,
    help: str,
    *,
    choices=None,
    low=None,
    high=None,
    low_open=False,
    high_open=False,
    note=None,
    default_text=None,
    flag=None,
    short=None,
    kind=None,
    argument=False,
    flag_value=None,
    form=None,
):
    """A config field: its default and everything the CLI and the validation need to know.
    ``choices``: the values it takes, or the :class:`Kinds` registry of a kind setting;
    ``flag_value``: what the flag given alone means (``--ray`` alone: a local runtime)."""
    meta = Setting(
        help=help,
        allowed=choices if choices is None or isinstance(choices, Kinds) else tuple(choices),
        low=low,
        high=high,
        low_open=low_open,
        high_open=high_open,
        note=note,
        default_text=default_text,
        flag_name=flag,
        short=short,
        kind=kind,
        argument=argument,
        flag_value=flag_value,
        form=form,
    )
    return field(default=default, metadata={"setting": meta})


# A size: HxW pixels, or xF times a base size (cnnvis.canvas.sizes.parse_size reads it).
SIZE_TEXT = re.compile(r"^\s*(?:x(?P<f>[0-9]*\.?[0-9]+)|(?P<h>[0-9]+)x(?P<w>[0-9]+))\s*$")


def check_size_text(text: str) -> None:
    """Raise :class:`InputError` unless ``text`` is ``HxW`` or ``xF``."""
    if not SIZE_TEXT.match(str(text)):
        raise InputError(
            f"malformed size '{text}'; write HxW in pixels (e.g. 1080x1920) or xF as a multiple (e.g. x1.5)"
        )


def _num(x) -> str:
    return "" if x is None else str(int(x)) if float(x).is_integer() else str(x)


def _show_default(s: Setting) -> str:
    return s.default_text if s.default is None else str(s.default)


class _Group:
    """Base of the setting groups: generic validation of every field from its :class:`Setting`."""

    NAME = ""  # the attribute of RenderConfig that holds the group

    def __post_init__(self):
        for s in self.settings():
            s.check(getattr(self, s.name))

    @classmethod
    def settings(cls) -> tuple[Setting, ...]:
        return cls.__dict__["_SETTINGS"]

    @classmethod
    def take(cls, kw: dict):
        """Pop this group's fields out of ``kw`` (a command's keyword arguments; the missing ones
        keep their defaults) and return the group built from them."""
        return cls(**{s.name: kw.pop(s.name) for s in cls.settings() if s.name in kw})


Options = _Group  # the base of any frozen group of declared settings, e.g. a recipe's options


def group(name: str):
    """Class decorator: a frozen dataclass of settings, held by RenderConfig as ``cfg.<name>``
    (or, for a recipe's own options, by nothing: the CLI generates its flags from it too)."""

    def wrap(cls):
        cls = dataclass(frozen=True)(cls)
        out = []
        for f in dataclasses.fields(cls):
            meta = f.metadata.get("setting")
            if meta is None:
                raise TypeError(f"{cls.__name__}.{f.name} is not declared with setting()")
            parts = [p.strip() for p in str(f.type).split("|")]
            base = [p for p in parts if p != "None"][0]
            multiple = base.startswith("tuple[")  # tuple[str, ...]: a repeatable flag
            if multiple:
                base = base[len("tuple[") :].split(",")[0].strip()
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            out.append(
                dataclasses.replace(
                    meta,
                    name=f.name,
                    group=name,
                    type=_TYPES[base],
                    optional="None" in parts,
                    default=default,
                    multiple=multiple,
                )
            )
        cls._SETTINGS = tuple(out)
        cls.NAME = name
        return cls

    return wrap


# ---------------------------------------------------------------------------- the groups
@group("sizes")
class Sizes(_Group):
    """The size plan (cnn-vis semantics; base = the init image's size, or the model input for
    noise) and the optimizer steps at each size."""

    initial_size: str | None = setting(
        None,
        "First size: HxW pixels or xF times the base size (image, or model input for noise).",
        form=check_size_text,
    )
    final_size: str | None = setting(None, "Last size, same format.", form=check_size_text)
    num_sizes: int = setting(1, "Number of sizes from initial to final (cnn-vis form).", low=1)
    size_spacing: str = setting("geometric", "Spacing of the sizes.", choices=SIZE_SPACINGS)
    octaves: int | None = setting(
        None, "Octave form: this many sizes ending at --final-size, each --octave-scale larger.", low=1
    )
    octave_scale: float = setting(
        1.4, "Scale between octaves.", low=1, low_open=True, note="each octave is this much larger"
    )
    steps: int = setting(20, "Optimizer steps per size.", low=1)


@group("tiling")
class Tiling(_Group):
    """How the canvas is cut into tiles for the model."""

    tile: int | None = setting(None, "Tile side in pixels.", low=1, default_text="the model's input size")
    overlap: int | None = setting(None, "Overlap between tiles in pixels.", low=0, default_text="tile/4")
    batch_size: int = setting(4, "Tiles per forward pass.", low=1)
    shift: bool = setting(True, "Shift the tile grid randomly every step (prevents seams).")


@group("transforms")
class Transforms(_Group):
    """Random transforms of each batch of tiles (robustness)."""

    transform_pad: int = setting(
        0,
        "Pad each tile with this many pixels of grey before the other transforms (lucid's and lucent's first "
        "transform); the network then sees the tile larger by twice this.",
        low=0,
    )
    jitter: int = setting(0, "Randomly roll each tile's content by up to this many pixels.", low=0)
    transform_scale: float = setting(
        0.0,
        "Randomly zoom each tile batch by up to this fraction (robustness).",
        low=0,
        high=1,
        high_open=True,
        note="a fraction of the tile",
    )
    transform_rotate: float = setting(
        0.0, "Randomly rotate each tile batch by up to this many degrees (robustness).", low=0
    )
    transform_views: int = setting(
        1,
        "Score each tile under this many independent random transforms a step and average them "
        "(lucid's transformation robustness, sampled more than once); each view costs a forward and backward.",
        low=1,
    )
    transform_crop: float = setting(
        1.0,
        "Score a random crop of this fraction of each tile's side, after the other transforms (horama's and "
        "faccent's crops); a crop costs the square of the fraction, so views of crops are cheaper views.",
        low=0,
        high=1,
        low_open=True,
        note="1 scores the whole tile",
    )


@group("parameterization")
class Parameterization(_Group):
    """What the optimizer changes (pixels, a decorrelated Fourier image, a CPPN or a low-resolution
    tensor; see :mod:`cnnvis.params`), in which colour space, with or without an alpha channel, and
    how the noise start looks."""

    param: str = setting(
        "pixel",
        "Optimize pixels, a decorrelated Fourier image, its phase only (maco: the amplitude of natural photos), "
        "a CPPN (resolution-independent) or a low-resolution tensor.",
        choices=PARAMS,
    )
    fft_decay: float = setting(1.0, "Fourier image: spectrum scaled by 1/f**this.", low=0, low_open=True)
    maco_spectrum: str | None = setting(
        None,
        "--param maco: the amplitude spectrum (.npy, (3, H, H // 2 + 1)) its images keep.",
        default_text="natural photos' (scripts/maco_spectrum.py)",
    )
    lowres_factor: int = setting(
        4,
        "--param lowres: optimize a tensor this many times smaller on each side, upsampled bilinearly.",
        low=1,
        note="1 = full resolution",
    )
    decorrelate: bool = setting(
        False, "--param pixel or lowres: optimize in the decorrelated colour space (the Fourier image always is)."
    )
    shared: bool = setting(
        False,
        "--param fft: the images of a batch share low-resolution terms (lucid's SharedImage), "
        "so an interpolation morphs smoothly.",
    )
    shared_weight: float = setting(
        1.0,
        "--shared: the shared terms' strength against each image's own (their step size under Adam); "
        "lower lets the ends of an interpolation differ more.",
        low=0,
    )
    alpha: bool = setting(
        False, "Optimize an RGBA image, composited over random backgrounds for the network; writes an RGBA PNG."
    )
    alpha_from_grad: bool = setting(
        False,
        "Write an RGBA image whose alpha is the objective's accumulated |gradient| (MACO's transparency): "
        "what the unit reads stays opaque. Any --param.",
    )
    init_scale: float = setting(0.1, "Noise init: standard deviation around the model's mean colour.", low=0)
    init_blur: float = setting(1.0, "Noise init: Gaussian blur sigma in pixels.", low=0)


@group("optim")
class Optimizer(_Group):
    """The optimizer over the canvas: rmsprop | sgd | adam | gd (icnn's gradient descent with
    momentum: ``delta = momentum * delta + lr * g``) | lbfgs (one L-BFGS iteration per step, the
    closure re-runs every tile). lr is in pixel units per step, linearly scheduled to lr_end over
    each size's steps (icnn's lr_start/lr_end). normalize_grad divides the objective's gradient by
    its mean |g| each step (Google's deepdream, icnn), so regularizer weights mean the same for
    every model and layer (ignored by lbfgs, whose line search needs the true gradient)."""

    optimizer: str = setting("rmsprop", "Optimizer over the canvas.", choices=OPTIMIZERS)
    lr: float = setting(0.01, "Learning rate (pixel units in [0, 1] per step).", low=0, low_open=True)
    lr_end: float | None = setting(None, "Linear schedule: the learning rate at the last step of each size.", low=0)
    latent_lr: float | None = setting(
        None,
        "With --prior dgn: the learning rate of the generator's latent.",
        low=0,
        low_open=True,
        default_text="--lr",
    )
    decay_rate: float = setting(
        0.95, "RMSProp decay rate of the squared-gradient average.", low=0, high=1, high_open=True
    )
    momentum: float = setting(0.9, "SGD / gd momentum.", low=0)
    momentum_end: float | None = setting(None, "Linear schedule: the momentum at the last step.", low=0)
    lbfgs_history: int = setting(100, "L-BFGS: curvature pairs kept.", low=1)
    lr_decay_every: int = setting(
        0, "Multiply the learning rate by --lr-decay-factor every N steps (0 = never).", low=0, note="0 = off"
    )
    lr_decay_factor: float = setting(1.0, "Learning-rate decay factor.", low=0)
    normalize_grad: bool = setting(True, "Divide the objective gradient by its mean |g| each step.")
    lap_scale: int = setting(
        0,
        "Normalize the objective's gradient level by level over a Laplacian pyramid of this many levels "
        "(Google's deepdream lap_normalize, neural-dream's -lap_scale).",
        low=0,
        note="0 = off",
    )


@group("regularizers")
class Regularizers(_Group):
    """Image priors: total variation (stepped by tv_step every tv_step_every steps), a p-norm
    toward a target, an auxiliary p-norm toward zero, the opacity penalty of an RGBA image, and a
    Gaussian blur every blur_every steps."""

    tv_weight: float = setting(0.05, "Total-variation weight.", low=0)
    tv_beta: float = setting(2.0, "Total-variation exponent beta.", low=0)
    tv_operator: str = setting("naive", "Finite-difference operator for TV.", choices=TV_OPERATORS)
    tv_scale: float = setting(1.0, "Divide the image by this before TV.", low=0, low_open=True)
    tv_step: float = setting(0.0, "Add this to the TV weight every --tv-step-every steps.", low=0)
    tv_step_every: int = setting(50, "Steps between TV weight increases.", low=0, note="0 = off")

    p_weight: float = setting(0.0, "p-norm weight (0 = off).", low=0)
    p_alpha: float = setting(6.0, "p-norm exponent alpha.", low=0)
    p_scale: float = setting(0.5, "Divide the image by this before the p-norm.", low=0, low_open=True)
    p_target: str = setting(
        "auto",
        "Pull toward the mean colour (zero) or the init image; auto = init when there is one.",
        choices=P_TARGETS,
    )
    aux_p_weight: float = setting(0.0, "Auxiliary p-norm (always toward zero) weight.", low=0)
    aux_p_alpha: float = setting(6.0, "Auxiliary p-norm exponent.", low=0)
    aux_p_scale: float = setting(0.5, "Auxiliary p-norm scale.", low=0, low_open=True)

    alpha_penalty: float = setting(
        0.1, "With --alpha: weight of the penalty on opacity, per pixel (weight x the sum of alpha).", low=0
    )

    blur_every: int = setting(0, "Gaussian-blur the canvas every N steps (0 = never).", low=0, note="0 = off")
    blur_sigma: float = setting(0.5, "Blur sigma in pixels.", low=0)
    blur_sigma_end: float | None = setting(None, "Linear schedule: the blur sigma at the last step.", low=0)


_FRACTION = "a fraction pulled toward the mean per step"
_PERCENTILE = "a percentile"


@group("pixel_ops")
class PixelOps(_Group):
    """Pixel operations after each step (pixel param only; icnn, after Yosinski et al. 2015),
    each with an ``_end`` value for a linear schedule and the clips with an ``_every`` period."""

    pixel_decay: float = setting(
        0.0,
        "Pull pixels toward the mean colour by this fraction each step (icnn's decay).",
        low=0,
        high=1,
        high_open=True,
        note=_FRACTION,
    )
    pixel_decay_end: float | None = setting(
        None, "Linear schedule: the decay at the last step.", low=0, high=1, high_open=True, note=_FRACTION
    )
    clamp_pixels: bool = setting(False, "Keep pixels in [0, 1] after each step.")
    clip_extreme: float = setting(
        0.0, "Clip this percentile of extreme values (icnn).", low=0, high=100, note=_PERCENTILE
    )
    clip_extreme_end: float | None = setting(
        None, "Linear schedule of --clip-extreme.", low=0, high=100, note=_PERCENTILE
    )
    clip_extreme_every: int = setting(4, "Steps between extreme-value clips.", low=0, note="0 = off")
    clip_small_norm: float = setting(
        0.0, "Reset this percentile of smallest-norm pixels to the mean (icnn).", low=0, high=100, note=_PERCENTILE
    )
    clip_small_norm_end: float | None = setting(
        None, "Linear schedule of --clip-small-norm.", low=0, high=100, note=_PERCENTILE
    )
    clip_small_norm_every: int = setting(4, "Steps between small-norm clips.", low=0, note="0 = off")
    clip_small_contrib: float = setting(
        0.0, "Reset this percentile of least-contributing pixels to the mean (icnn).", low=0, high=100, note=_PERCENTILE
    )
    clip_small_contrib_end: float | None = setting(
        None, "Linear schedule of --clip-small-contrib.", low=0, high=100, note=_PERCENTILE
    )
    clip_small_contrib_every: int = setting(4, "Steps between small-contribution clips.", low=0, note="0 = off")


@group("out")
class Output(_Group):
    """How the canvas becomes 8 bits, and the seed of every random choice."""

    output: str = setting(
        "clip", "Map the canvas to 8 bits by clipping or min-max rescaling.", choices=OUTPUT_MODES, flag="--output-mode"
    )
    seed: int = setting(0, "Seed of every random choice.")


@group("compute")
class Compute(_Group):
    """How the network's forward and backward run on the tiles (bench/speed.py measured each);
    the canvas, the optimizer state and the regularizers stay float32 whatever they say."""

    precision: str = setting(
        "auto",
        "The network's dtype: auto is bf16 where the device computes it natively (AVX512_BF16, AMX, CUDA), else fp32.",
        choices=PRECISIONS,
    )
    channels_last: str = setting(
        "auto", "Channels-last memory format; auto: on for convolutional networks.", choices=SWITCHES
    )
    compile: bool = setting(False, "torch.compile the network's forward and backward (slower on CPU).")
    fold_batchnorm: str = setting(
        "auto",
        "Fold eval-mode BatchNorm into the convolution before it (the same function, one pass less over memory); "
        "auto: on wherever a probe shows the output unchanged.",
        choices=SWITCHES,
    )
    fp32_strided_depthwise: str = setting(
        "auto",
        "Run stride-2 depthwise convolutions in fp32 inside a bf16 network (oneDNN's bf16 kernels for them measured "
        "2-15x slower on CPU); auto: on where the network runs in bf16 on a CPU.",
        choices=SWITCHES,
    )


GROUPS: tuple[type[_Group], ...] = (
    Sizes,
    Tiling,
    Transforms,
    Parameterization,
    Optimizer,
    Regularizers,
    PixelOps,
    Output,
    Compute,
)
SETTINGS: MappingProxyType = MappingProxyType({s.name: s for g in GROUPS for s in g.settings()})
_GROUP_OF = {name: s.group for name, s in SETTINGS.items()}
# The settings that edit pixels in place (icnn's pixel operations): a kind that has no pixels to
# edit refuses them (cnnvis.params.base.Param.check_settings).
PIXEL_OPS = ("pixel_decay", "clip_extreme", "clip_small_norm", "clip_small_contrib", "blur_every")
# The kind settings: each chosen kind checks the settings it depends on.
_KIND_SETTINGS = tuple(s for s in SETTINGS.values() if isinstance(s.allowed, Kinds))


@dataclass(frozen=True, init=False, repr=False)
class RenderConfig:
    """Settings of the multiscale tiled optimization. Units: pixels for sizes, [0, 1] for colours.

    Build it flat (``RenderConfig(steps=5, lr=0.1)``), from groups (``RenderConfig(optim=Optimizer(lr=0.1))``)
    or both (flat names win). Read it flat (``cfg.lr``) or by group (``cfg.optim.lr``). Every
    field, its default, range and meaning: :data:`SETTINGS` (or ``cnnvis dream --help``).

    Groups: ``sizes`` (initial_size, final_size, num_sizes, size_spacing, octaves, octave_scale,
    steps), ``tiling`` (tile, overlap, batch_size, shift), ``transforms`` (jitter, transform_scale,
    transform_rotate), ``parameterization`` (param, fft_decay, lowres_factor, decorrelate, shared, alpha,
    init_scale, init_blur), ``optim`` (optimizer, lr, lr_end, latent_lr, decay_rate, momentum, ...,
    normalize_grad),
    ``regularizers`` (tv_*, p_*, aux_p_*, alpha_penalty, blur_*), ``pixel_ops`` (pixel_decay, clamp_pixels,
    clip_*), ``out`` (output, seed), ``compute`` (precision, channels_last, compile).
    """

    sizes: Sizes
    tiling: Tiling
    transforms: Transforms
    parameterization: Parameterization
    optim: Optimizer
    regularizers: Regularizers
    pixel_ops: PixelOps
    out: Output
    compute: Compute

    def __init__(self, **kw):
        groups = {g.NAME: kw.pop(g.NAME, None) for g in GROUPS}
        per_group: dict[str, dict] = {g.NAME: {} for g in GROUPS}
        for name, value in kw.items():
            if name not in _GROUP_OF:
                raise TypeError(f"RenderConfig.__init__() got an unexpected keyword argument '{name}'")
            per_group[_GROUP_OF[name]][name] = value
        for g in GROUPS:
            given = groups[g.NAME]
            if given is not None and not isinstance(given, g):
                raise TypeError(f"RenderConfig({g.NAME}=...) must be a {g.__name__}, got {type(given).__name__}")
            value = (
                g(**per_group[g.NAME])
                if given is None
                else dataclasses.replace(given, **per_group[g.NAME])
                if per_group[g.NAME]
                else given
            )
            object.__setattr__(self, g.NAME, value)
        self.__post_init__()

    def __post_init__(self):
        """The checks across groups (each group checks its own fields): the chosen kind of each
        kind setting (``--param``, ``--optimizer``) checks the settings it depends on, with its
        ``check_settings(cfg)``, once its module has registered it (those modules import torch;
        a render checks again when it starts, :meth:`cnnvis.params.base.Param.check`)."""
        for s in _KIND_SETTINGS:
            check = getattr(s.allowed.get(getattr(self, s.name)), "check_settings", None)
            if check is not None:
                check(self)

    @property
    def groups(self) -> MappingProxyType:
        """Group name -> group, in declaration order."""
        return MappingProxyType({g.NAME: getattr(self, g.NAME) for g in GROUPS})

    @staticmethod
    def field_names() -> tuple[str, ...]:
        """The flat field names, in declaration order (what ``RenderConfig(**kw)`` takes)."""
        return tuple(SETTINGS)

    @staticmethod
    def settings() -> tuple[Setting, ...]:
        """Every field's :class:`Setting`, in declaration order."""
        return tuple(SETTINGS.values())

    def scheduled(self, name: str, frac: float) -> float:
        """``name`` linearly scheduled to ``name_end`` at ``frac`` in [0, 1] of a size's steps."""
        start, end = getattr(self, name), getattr(self, name + "_end")
        return start if end is None else start + (end - start) * frac

    def as_dict(self) -> dict:
        """Every field, flat, in declaration order: ``RenderConfig(**cfg.as_dict()) == cfg``."""
        return {name: getattr(self, name) for name in SETTINGS}

    def replace(self, **changes) -> RenderConfig:
        """A copy with ``changes`` (flat names or groups)."""
        return RenderConfig(**{g.NAME: getattr(self, g.NAME) for g in GROUPS}, **changes)

    def __repr__(self) -> str:
        changed = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items() if v != SETTINGS[k].default)
        return f"RenderConfig({changed})"


# flat reads: cfg.lr is cfg.optim.lr
for _name, _s in SETTINGS.items():
    setattr(RenderConfig, _name, property(operator.attrgetter(f"{_s.group}.{_name}"), doc=_s.help))
RenderConfig.__init__.__signature__ = inspect.Signature(
    [inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)]
    + [inspect.Parameter(g.NAME, inspect.Parameter.KEYWORD_ONLY, default=None) for g in GROUPS]
    + [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=s.default) for n, s in SETTINGS.items()]
)
del _name, _s
