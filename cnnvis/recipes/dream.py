"""The dream recipe: from typed options to the objective and the config of a deep dream.

:class:`DreamOptions` declares every option of ``cnnvis dream`` that is not a render setting
(:class:`cnnvis.config.RenderConfig`), a prior (:class:`cnnvis.priors.spec.PriorSpec`), a model
or an output; the CLI generates its flags from it. A notebook calls the same functions::

    opts = DreamOptions(layers=("blocks.5.0",), channel=[7])
    objective, picked = dream_objective(opts, model, device)
    cfg = dream_config({"steps": 10}, PriorSpec())

Nothing here prints or writes; torch loads on first use, not at import (``--help`` reads this).
"""

from __future__ import annotations

from cnnvis.config import Options, RenderConfig, group, setting
from cnnvis.defaults import (
    CHANNEL_MODES,
    DEFAULT_LAYERS,
    DEFAULT_OCTAVES,
    DGN_DEFAULTS,
    DREAM_BF16_BATCH,
    DREAM_FORMS,
    DREAM_GRAD_CLIP,
    DREAM_L1,
    DREAM_L2,
)
from cnnvis.errors import InputError
from cnnvis.models.layer_table import LayerTable
from cnnvis.objectives.spec import objective_usage
from cnnvis.priors.spec import PriorSpec
from cnnvis.recipes.options import (
    channel_option,
    layers_option,
    objectives_option,
    out_option,
    position_option,
    reference_option,
)

# The render settings that say how large a dream grows; with none of them it grows through octaves.
SIZING = ("octaves", "initial_size", "final_size")


@group("dream")
class DreamOptions(Options):
    """What a dream amplifies, and how (layer amplification, channels, neurons, -O objectives)."""

    image: str | None = setting(None, "The image to dream on.", argument=True, default_text="a bundled photo")
    out: str = out_option("dream.png", "Output image (.png, .jpg, ...).")
    noise: bool = setting(False, "Start from noise instead of an image.")
    layers: tuple[str, ...] = layers_option(
        "Layer to amplify (repeatable).", default_text="blocks.4.2 on efficientnet-lite*"
    )
    channel: str | None = channel_option(
        "Amplify this channel of --layer instead of the whole layer; a list or range (0,5,9 or 0-15) renders one "
        "image per channel in one batch, NAME_c5.png each, plus NAME_sheet.png."
    )
    nx: int | None = position_option(
        "x",
        "With --channel: one neuron at this column of the layer's map at the model's input size (cnnvis layers "
        "prints it); smaller octaves take the same relative place.",
    )
    ny: int | None = position_option("y", "With --channel: one neuron at this row of that map (see --x).")
    objectives: tuple[str, ...] = objectives_option(objective_usage())
    guide: str | None = setting(None, "Guide image: amplify the features it has (at each --layer).")
    reference: str | None = reference_option()
    channel_mode: str | None = setting(
        None,
        "Dream only --channel-count channels of each --layer: those the image excites most (strongest), least "
        "(weakest) or closest to the average (neural-dream's channel modes).",
        choices=CHANNEL_MODES,
    )
    channel_count: int | None = setting(None, "With --channel-mode: how many channels.", low=1)
    dream_form: str = setting(
        "cnnvis", "Layer amplification: cnn-vis's l1/l2/clip or Google's mean square.", choices=DREAM_FORMS
    )
    l1_weight: float = setting(DREAM_L1, "cnn-vis amplification: weight of |a|.")
    l2_weight: float = setting(DREAM_L2, "cnn-vis amplification: weight of clip(a).")
    grad_clip: float = setting(DREAM_GRAD_CLIP, "cnn-vis amplification: clip of a.", low=0)
    zoom_frames: int = setting(
        0,
        "Infinite zoom: dream this many frames, each zoomed into the last; --out is a .gif or .mp4.",
        low=0,
        note="0 = no zoom",
    )
    zoom_scale: float = setting(1.05, "Infinite zoom: magnification per frame.", low=1, low_open=True)

    def channels(self) -> list[int]:
        """``--channel`` as a list of channels (a recorded manifest may hold one int)."""
        from cnnvis.recipes.units import parse_channels

        return parse_channels(self.channel)

    def check(self) -> None:
        """The checks across options, before anything loads (one line each)."""
        if (self.nx is None) != (self.ny is None):
            raise InputError("give both --x and --y for a neuron, or neither for the whole channel")
        if self.nx is not None and self.channel is None:
            raise InputError("--x/--y select a neuron of a channel; also pass --channel C")
        if self.guide and self.channel is not None:
            raise InputError("--guide amplifies a whole layer; drop --channel")
        if self.channel_mode and (self.channel is not None or self.guide):
            raise InputError("--channel-mode picks channels of a whole-layer dream; drop --channel / --guide")
        if self.channel_mode and self.noise:
            raise InputError("--channel-mode chooses channels from the start image; drop --noise or give an IMAGE")
        if self.noise and self.image:
            raise InputError(f"both an image ('{self.image}') and --noise were given; drop one")

    def check_table(self, table: LayerTable) -> None:
        """The checks that need only the model's layer table (layers, channels, the neuron's place),
        with the messages of the same checks on the loaded model: they answer before it loads."""
        from cnnvis.objectives.position import MapPosition

        layers = dream_layers(self, table.model)
        table.check_layers(layers)
        for layer in layers:
            for channel in self.channels():
                table.check_channel(layer, channel)
            grid = table.grid(layer)
            if self.nx is not None and grid is not None:
                MapPosition(self.nx, self.ny, grid).check(layer, *grid)


def dream_config(render_kw: dict, prior: PriorSpec, zoom: bool = False) -> RenderConfig:
    """The config of a dream from its render settings (``RenderConfig`` field -> value): a
    generator's latent gets its own learning rate (its units are not pixels), and with no sizing
    setting the dream grows through :data:`cnnvis.defaults.DEFAULT_OCTAVES` octaves up to the
    image size (a zoom frame instead stays one short dream at the frame's size)."""
    kw = dict(render_kw)
    if prior.wanted and kw.get("latent_lr") is None:
        kw["latent_lr"] = DGN_DEFAULTS["latent_lr"]
    sized = any(kw.get(k) is not None for k in SIZING) or kw.get("num_sizes", 1) != 1
    if not sized and not zoom:
        kw["octaves"] = DEFAULT_OCTAVES
    return RenderConfig(**kw)


def dream_layers(opts: DreamOptions, model_name: str) -> list[str]:
    """The layers a dream amplifies: ``--layer``, or the model's default layer when neither a
    layer nor an ``-O`` objective is given."""
    if opts.layers or opts.objectives:
        return list(opts.layers)
    if model_name not in DEFAULT_LAYERS:
        raise InputError(
            f"no default layer for model '{model_name}'; pass --layer NAME (list them: cnnvis layers {model_name})"
        )
    return [DEFAULT_LAYERS[model_name]]


def guide_features(model, guide, layers, side: int) -> dict:
    """Activations {layer: (1, C, h, w)} of a guide image (1, 3, H, W) in [0, 1], resized to
    ``side`` x ``side`` (one tile), at ``layers``."""
    import torch

    from cnnvis.canvas.sizes import resize

    with model.capture(layers) as cap, torch.no_grad():
        return cap(model.normalize(resize(guide, (side, side))))


def _read(path: str | None, device):
    """(1, 3, H, W) in [0, 1] of an image file on ``device``, or None."""
    from cnnvis.io.images import hwc_to_bchw, read_image

    return None if path is None else hwc_to_bchw(read_image(path), device)


def _guide_layers(opts: DreamOptions, layers: list[str]) -> list[str]:
    """The layers a guide image is read at: the dream's, and those of ``guide:LAYER`` objectives."""
    named = [s.split("@")[0].split(":")[1] for s in opts.objectives if s.startswith("guide:") and s.count(":") >= 1]
    return layers + named


def dream_objective(opts: DreamOptions, model, device, start=None):
    """The objective of a dream and the channels ``--channel-mode`` picked per layer.

    Args:
        opts: the dream's options (checked with :meth:`DreamOptions.check`).
        model: the :class:`cnnvis.models.registry.LoadedModel`.
        device: where the guide and reference images go.
        start: (1, 3, H, W) in [0, 1], the start image (``--channel-mode`` ranks channels on it).

    Returns:
        (objective, {layer: [channel, ...]} picked by ``--channel-mode``, else empty).
    """
    from cnnvis.objectives.base import Sum

    opts.check()
    layers = dream_layers(opts, model.name)
    guide = _read(opts.guide, device)
    guide_feats = None if guide is None else guide_features(model, guide, _guide_layers(opts, layers), model.input_size)
    terms, picked = [], {}
    for layer in layers:
        layer_terms, picked_here = _layer_terms(opts, model, layer, guide_feats, start)
        terms += layer_terms
        if picked_here is not None:
            picked[layer] = picked_here
    terms += _spec_terms(opts, model, guide_feats, _read(opts.reference, device))
    return (terms[0][1] if len(terms) == 1 and terms[0][0] == 1.0 else Sum(terms)), picked


def _layer_terms(opts: DreamOptions, model, layer: str, guide_feats, start):
    """The (weight, objective) terms of one ``--layer``, and the channels picked there (or None)."""
    from cnnvis.objectives.activation import Channel, Dream, Guide, Neuron

    amplify = dict(form=opts.dream_form, l1=opts.l1_weight, l2=opts.l2_weight, clip=opts.grad_clip)
    if guide_feats is not None:
        return [(1.0, Guide(layer, guide_feats[layer]))], None
    if opts.channel_mode:
        picked = _picked_channels(opts, model, layer, start)
        dream = Dream(layer, amplify["form"], amplify["l1"], amplify["l2"], amplify["clip"], channels=picked)
        return [(1.0, dream)], picked
    channels = opts.channels()
    if not channels:
        return [(1.0, Dream(layer, amplify["form"], amplify["l1"], amplify["l2"], amplify["clip"]))], None
    # one image per channel, rendered as one batch: image i maximizes channel i
    grid = None if opts.nx is None else full_tile_grid(model, layer)  # one probe for all the channels
    terms = []
    for i, c in enumerate(channels):
        obj = Channel(layer, c) if grid is None else Neuron(layer, c, opts.nx, opts.ny, grid)
        terms.append((1.0, obj if len(channels) == 1 else obj.on(i)))
    return terms, None


def _spec_terms(opts: DreamOptions, model, guide_feats, reference) -> list:
    """The (weight, objective) terms of the ``-O`` objectives."""
    from cnnvis.objectives.spec import parse_objective
    from cnnvis.objectives.text import text_encoder_of

    terms = []
    for spec in opts.objectives:
        w, _, obj = parse_objective(
            spec,
            dream_form=opts.dream_form,
            l1_weight=opts.l1_weight,
            l2_weight=opts.l2_weight,
            grad_clip=opts.grad_clip,
            guide_feats=guide_feats,
            reference=reference,
            grid_of=lambda layer: full_tile_grid(model, layer),
            text_encoder=text_encoder_of(model.module),
        )
        terms.append((w, obj))
    return terms


def _picked_channels(opts: DreamOptions, model, layer: str, start) -> list[int]:
    """``--channel-mode``: the channels of ``layer`` chosen from the start image (1, 3, H, W)."""
    from cnnvis.recipes.channels import channel_means, select_channels

    return select_channels(
        channel_means(model, layer, start), opts.channel_mode, opts.channel_count, f"layer '{layer}'"
    )


def dream_render(model, objective, cfg: RenderConfig, init, device, prior=None, *, batch: int = 1, penalties=()):
    """The :class:`cnnvis.pipeline.loop.Render` of a dream (built, probed, not run): from ``init``
    (1, 3, H, W) in [0, 1] or noise, ``batch`` images, through a generator ``prior``'s latent when
    there is one (a :class:`cnnvis.priors.dgn.DGNPrior`), with more ``penalties`` (a video's
    temporal term)."""
    from cnnvis.canvas.start import Start
    from cnnvis.params.generator import GeneratorStages
    from cnnvis.pipeline.loop import Render
    from cnnvis.regularize.terms import Terms

    stages = None if prior is None else GeneratorStages(prior)
    start = Start(init=init, batch=batch)
    return Render(model, objective, cfg, start, device, stages=stages, terms=Terms(penalties=penalties))


def full_tile_grid(model, layer: str) -> tuple[int, int]:
    """(H, W) of ``layer``'s map at the model's input size: the map a dream's neuron positions
    (``--x``/``--y``) are given on, the same place at every octave."""
    from cnnvis.recipes.recon import layer_shape

    shape = layer_shape(model, layer, (model.input_size, model.input_size))
    if len(shape) != 3:
        raise InputError(
            f"layer '{layer}' has output shape {shape}; a neuron needs a (C, H, W) map, use --channel alone"
        )
    return shape[1], shape[2]


def render_default_texts() -> dict[str, str]:
    """--help's default of the render settings a dream changes: its octaves and a prior's rate."""
    from cnnvis.config import SETTINGS
    from cnnvis.recipes.options import format_value

    latent_lr = format_value(SETTINGS["latent_lr"], DGN_DEFAULTS["latent_lr"])
    return {
        "octaves": f"{DEFAULT_OCTAVES} when no size flag or --zoom-frames is given",
        "latent_lr": f"--lr; {latent_lr} with --prior dgn",
        "batch_size": f"{SETTINGS['batch_size'].default}; {DREAM_BF16_BATCH} where the network runs in bf16",
    }
