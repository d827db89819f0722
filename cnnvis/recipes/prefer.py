"""The prefer recipe (cnnpref, lucid): typed options, and the render of the preferred images of
units, channels, directions, diverse batches and interpolations.

:class:`PreferOptions` declares every option of ``cnnvis prefer`` that is not a render setting,
a prior, a model or an output option; the CLI generates its flags from it. The renders come from
:mod:`cnnvis.recipes.recon` with the tuned defaults (a decorrelated Fourier image with
transformation robustness). Nothing here prints or writes.
"""

from __future__ import annotations

from cnnvis.config import SWITCHES, Options, group, setting
from cnnvis.defaults import (
    DGN_PREFER_REFINE,
    PREFER_DEFAULTS,
    PREFER_INTERPOLATE_DEFAULTS,
    PREFER_ROBUST_EDITION,
    PREFER_ROBUST_EDITIONS,
)
from cnnvis.errors import InputError
from cnnvis.models.layer_table import LayerTable
from cnnvis.objectives.spec import objective_usage
from cnnvis.recipes.options import (
    activation_option,
    channel_option,
    dgn_refine_option,
    objectives_option,
    out_option,
    plain_defaults,
    position_option,
    reference_option,
    size_option,
    tuned_default_texts,
)
from cnnvis.recipes.units import one_unit_mask, parse_channels, unit_label

# How a prefer run recorded before --robust, and before --robust-edition, existed ran: replay fills this in
# (cnnvis/cli/replay.py)
BEFORE_ROBUST_SETTINGS = {"robust": "off", "robust_edition": 1}

# The -O kinds that make sense on every image of a batch (a guide needs dream's --guide).
PREFER_KINDS = (
    "direction",
    "direction-neuron",
    "direction-cossim",
    "caricature",
    "channel",
    "neuron",
    "token",
    "text",
    "dream",
)


@group("prefer")
class PreferOptions(Options):
    """What a preferred image maximizes: a unit, a channel, -O objectives or an interpolation,
    for one image or a batch that diversity and alignment terms tie together."""

    layer: str | None = setting(None, "The layer of the unit (with --channel).", short="-l")
    channel: str | None = channel_option(
        "Channel (or fully connected unit) index; a list or range (0,5,9 or 0-15) renders one image per unit in "
        "one batch, NAME_c5.png each, plus NAME_sheet.png."
    )
    nx: int | None = position_option("x", "Unit column in the feature map [default: centre].")
    ny: int | None = position_option("y", "Unit row in the feature map [default: centre].")
    whole_channel: bool = setting(False, "Maximize the channel at every position instead of one unit.")
    token: str | None = setting(
        None,
        "A prefix token of a transformer layer (cls, or its index): maximize --channel of that token instead of a "
        "patch position.",
    )
    rf_mask: bool = setting(False, "Change only the unit's receptive field (cnnpref, for lower layers).")
    size: str | None = size_option("Image size: model (the model input) or HxW.")
    activation: str = activation_option("Maximize the unit before or after its activation.")
    objectives: tuple[str, ...] = objectives_option(objective_usage(PREFER_KINDS) + " On every image.")
    reference: str | None = reference_option()
    batch: int | None = setting(
        None,
        "Images rendered together (with --diversity or --interpolate).",
        low=1,
        default_text="one per --channel",
    )
    diversity: float = setting(
        0.0,
        "Weight of the diversity term (lucid): the --batch images differ in their Gram matrices at the "
        "objective's layer.",
        low=0,
    )
    interpolate: str | None = setting(
        None,
        "LAYER:A:B: image i of --batch N maximizes (1 - t) channel A + t channel B, t = i / (N - 1); writes each "
        "frame, a sheet and NAME.gif.",
    )
    alignment: float = setting(
        0.0,
        "Weight of the alignment term (lucid): neighbouring images' activations at the objective's layer agree.",
        low=0,
    )
    out: str = out_option("pref.png", "Output image.")
    dgn_refine: float = dgn_refine_option(DGN_PREFER_REFINE)
    robust: str = setting(
        "auto",
        "Class-visualization settings: stronger random transforms (lucent's strength), two draws of them a step, "
        "and a photo's steeper spectrum at a lower learning rate, so that the image reads as its class to other "
        "networks and has a photo's spectrum (bench/quality.py); auto: on for a unit of the network's output layer "
        "(a class visualization) on the Fourier image, off elsewhere. Given settings win.",
        choices=SWITCHES,
    )
    robust_edition: int = setting(
        PREFER_ROBUST_EDITION,
        "Which edition of --robust's tuned settings to render with: 1, one view a step and lucid's spectrum (cnnvis "
        "before edition 2), or 2; replay sets the one a run was recorded with.",
        low=1,
        high=PREFER_ROBUST_EDITION,
    )

    def units(self) -> list[int]:
        """``--channel`` as a list (empty without one)."""
        return parse_channels(self.channel)

    def images(self) -> int:
        """N, the images rendered together."""
        return self.batch or max(1, len(self.units()))

    def check(self) -> None:
        """The checks across options, before anything loads (one line each)."""
        if (self.nx is None) != (self.ny is None):
            raise InputError("give both --x and --y for one unit, or neither for the centre unit")
        if self.token is not None:
            self._check_token()
        if self.whole_channel and self.nx is not None:
            raise InputError("--whole-channel maximizes every position of the channel; drop --x/--y")
        if (self.layer is None) != (self.channel is None):
            raise InputError(
                "--layer and --channel name a unit together; give both (or use -O / --interpolate instead)"
            )
        if self.layer is None and not self.objectives and not self.interpolate:
            raise InputError(
                "name what to maximize: --layer L --channel C, -O KIND:LAYER[:ARGS], or --interpolate LAYER:A:B"
            )
        self._check_batch()

    def _check_token(self) -> None:
        from cnnvis.objectives.tokens import parse_token

        parse_token(self.token)
        if self.layer is None:
            raise InputError("--token names a prefix token of --layer's output; give --layer L --channel C with it")
        if self.whole_channel or self.nx is not None or self.ny is not None or self.rf_mask:
            raise InputError(
                "--token is one token, not a place on the map; drop --whole-channel, --x/--y and --rf-mask"
            )

    def _check_batch(self) -> None:
        units, n = self.units(), self.images()
        if len(units) > 1 and n != len(units):
            raise InputError(
                f"--channel lists {len(units)} units, one image each; drop --batch {self.batch} or make it {len(units)}"
            )
        if self.interpolate and n < 2:
            raise InputError(f"--interpolate renders a sequence of images: give --batch 2 or more, got {n}")
        if (self.diversity or self.alignment) and n < 2:
            raise InputError(
                f"--diversity and --alignment compare the images of a batch: give --batch 2 or more, got {n}"
            )

    def check_table(self, table: LayerTable) -> None:
        """The checks that need only the model's layer table (the unit's or the interpolation's
        layer and channels), with the words of the same checks on the loaded model: they answer
        before it loads."""
        named = [(self.layer, self.units())] if self.layer else []
        if self.interpolate:
            layer, a, b = parse_interpolation(self.interpolate)
            named.append((layer, [a, b]))
        for layer, channels in named:
            table.check_layers([layer])
            for channel in channels:
                table.check_channel(layer, channel)

    def labels(self) -> list[str] | None:
        """The file labels of a batch's images (None for one image): ``t0..`` for an
        interpolation, ``c5`` per unit, else ``b0..``."""
        units, n = self.units(), self.images()
        if n < 2:
            return None
        if self.interpolate:
            return [f"t{i}" for i in range(n)]
        if len(units) == n:
            return [unit_label(c) for c in units]
        return [f"b{i}" for i in range(n)]


def prefer_options(opts: PreferOptions, given: dict) -> dict:
    """The render settings of a prefer run: those the user gave, over an interpolation's own
    defaults (shared low-resolution terms) where the parameterization can share terms."""
    from cnnvis.params import PARAM_KINDS

    options = {**given, "dgn_refine": opts.dgn_refine}
    kind = PARAM_KINDS.get(options.get("param", PREFER_DEFAULTS["param"]))
    if opts.interpolate and getattr(kind, "accepts_shared", False):
        options = {**PREFER_INTERPOLATE_DEFAULTS, **options}
    return options


def robust_options(opts: PreferOptions, model, layer: str | None, options: dict, prior=None) -> dict:
    """``options`` over ``--robust-edition``'s table of :data:`cnnvis.defaults.PREFER_ROBUST_EDITIONS` where
    ``--robust`` is on, or ``auto`` and ``layer`` is the network's output (its last module: class logits) rendered
    on the Fourier image without a generator prior (the case it was tuned on)."""
    from cnnvis.recipes.recon import layer_depth

    on = opts.robust == "on"
    if opts.robust == "auto" and layer is not None:
        fourier = options.get("param", PREFER_DEFAULTS["param"]) == "fft"
        on = fourier and prior is None and layer_depth(model.module, layer) >= 1.0
    return {**PREFER_ROBUST_EDITIONS[opts.robust_edition], **options} if on else options


def unit_feature_mask(opts: PreferOptions, model, hook: str, channel: int, hw):
    """The feature mask of one unit of ``opts.layer`` (hooked at ``hook``) at the render size
    ``hw``: channel ``channel`` at (--y, --x) (default the centre), or the whole channel."""
    from cnnvis.recipes.recon import layer_shape

    # a whole channel needs only the channel count: measured at the model's input size, not with
    # a forward pass of the whole canvas (a 4096x4096 one held 6 GB)
    side = (model.input_size, model.input_size) if opts.whole_channel else hw
    shape = layer_shape(model, hook, side)
    return one_unit_mask(shape, channel, opts.nx, opts.ny, whole_channel=opts.whole_channel, layer=opts.layer)


def prefer_render(opts: PreferOptions, model, device, prior, given: dict):
    """The render of a prefer run (call :meth:`PreferOptions.check` first). ``given``: the render
    settings the user gave (the rest take the tuned defaults)."""
    from cnnvis.models.capture import resolve_layer
    from cnnvis.recipes.options import parse_size
    from cnnvis.recipes.recon import objective_render
    from cnnvis.recipes.recon import prefer_render as unit_render

    hw = parse_size(opts.size, model, None)
    options = prefer_options(opts, given)
    terms, term_layer = _terms(opts, model, hw)
    if terms is None:  # a unit (or a list of units): cnnpref's path
        hook = resolve_layer(model.module, opts.layer, opts.activation)
        options = robust_options(opts, model, hook, options, prior)
        masks = [unit_feature_mask(opts, model, hook, c, hw) for c in opts.units()]
        mask = masks if len(masks) > 1 else masks[0]
        image_mask = "rf" if opts.rf_mask else None
        return unit_render(model, hook, mask, image_mask=image_mask, size=hw, device=device, prior=prior, **options)
    if opts.rf_mask:
        raise InputError(
            "--rf-mask applies to one unit given with --layer/--channel; "
            "drop it with -O, --interpolate, --diversity or --alignment"
        )
    from cnnvis.objectives.base import Sum
    from cnnvis.objectives.batch import Alignment, Diversity

    if opts.diversity:
        terms.append((float(opts.diversity), Diversity(term_layer)))
    if opts.alignment:
        terms.append((float(opts.alignment), Alignment(term_layer)))  # its score is minus the misalignment
    options = robust_options(opts, model, None, options, prior)
    return objective_render(model, Sum(terms), size=hw, device=device, prior=prior, batch=opts.images(), **options)


def _terms(opts: PreferOptions, model, hw):
    """The objective terms of a prefer run that is more than cnnpref's unit(s) (None when it is
    just that), and the layer that diversity and alignment compare at."""
    units, n = opts.units(), opts.images()
    if not opts.objectives and not opts.interpolate and opts.token is None and n == max(1, len(units)):
        return None, None
    terms, term_layer = _unit_terms(opts, model, hw)
    terms_o, layer_o = _objective_terms(opts, model)
    terms += terms_o
    term_layer = term_layer or layer_o
    if opts.interpolate:
        interp, layer_i = _interpolation_terms(opts, model, n)
        terms += interp
        term_layer = term_layer or layer_i
    return terms, term_layer


def _unit_terms(opts: PreferOptions, model, hw):
    """One masked-unit term per ``--channel`` unit (image i maximizes unit i), and their layer."""
    from cnnvis.models.capture import resolve_layer
    from cnnvis.objectives.inversion import MaskedUnits

    if opts.layer is None:
        return [], None
    hook = resolve_layer(model.module, opts.layer, opts.activation)
    units = opts.units()
    terms = []
    for i, c in enumerate(units):
        if opts.token is not None:
            from cnnvis.objectives.tokens import TokenChannel, parse_token

            obj = TokenChannel(hook, parse_token(opts.token), c)
        else:
            obj = MaskedUnits(hook, unit_feature_mask(opts, model, hook, c, hw))
        terms.append((1.0, obj.on(i) if len(units) > 1 else obj))
    return terms, hook


def _objective_terms(opts: PreferOptions, model):
    """The ``-O`` terms (on every image), and the layer of the first."""
    from cnnvis.io.images import hwc_to_bchw, read_image
    from cnnvis.objectives.spec import parse_objective
    from cnnvis.objectives.text import text_encoder_of

    ref = None if opts.reference is None else hwc_to_bchw(read_image(opts.reference))
    terms, first = [], None
    for spec in opts.objectives:
        w, spec_layer, obj = parse_objective(spec, reference=ref, text_encoder=text_encoder_of(model.module))
        terms.append((w, obj))
        first = first or spec_layer
    return terms, first


def _interpolation_terms(opts: PreferOptions, model, n: int):
    """Image i of n maximizes (1 - t) channel A + t channel B, t = i / (n - 1)."""
    from cnnvis.models.capture import resolve_layer
    from cnnvis.objectives.activation import Channel

    name, a, b = parse_interpolation(opts.interpolate)
    hook = resolve_layer(model.module, name, opts.activation)
    terms = []
    for i in range(n):
        t = i / (n - 1)
        terms += [(1 - t, Channel(hook, a).on(i)), (t, Channel(hook, b).on(i))]
    return terms, hook


def parse_interpolation(text: str) -> tuple[str, int, int]:
    """``LAYER:A:B`` -> (layer, A, B)."""
    name, _, ab = text.rpartition(":")
    name, _, a = name.rpartition(":")
    try:
        if not name:
            raise ValueError
        return name, int(a), int(ab)
    except ValueError:
        raise InputError(
            f"bad --interpolate '{text}'; write LAYER:A:B with two channel numbers, e.g. blocks.4:5:42"
        ) from None


def render_default_texts() -> dict[str, str]:
    """--help's default of each render setting of ``prefer``: its tuned defaults, and those of a
    receptive-field mask, each parameterization, an interpolation and a prior."""
    from cnnvis import defaults as D

    variants = [
        ("with --rf-mask", D.PREFER_MASK_DEFAULTS),
        *((f"with --param {k}", v) for k, v in D.PREFER_PARAM_DEFAULTS.items()),
        ("with --robust (class logits)", D.PREFER_ROBUST_DEFAULTS),
        ("with --interpolate", D.PREFER_INTERPOLATE_DEFAULTS),
        ("with --prior dgn", D.DGN_DEFAULTS),
    ]
    extra = {"tile": f"the image size (one tile) up to {D.PREFER_ONE_TILE_MAX} px, else the model input"}
    return tuned_default_texts({**plain_defaults(), **D.PREFER_DEFAULTS}, {}, variants, extra)
