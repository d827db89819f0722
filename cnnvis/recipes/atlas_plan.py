"""An atlas, planned: which units of which layers to render, at what size, with which settings.

:class:`AtlasOptions` declares the ``cnnvis atlas`` command's own options once (the CLI
generates its flags from it); the model, render and prior settings are their own groups.
:func:`plan_atlas` resolves them against the model, and :func:`batches` cuts the plan into the
batches that :mod:`cnnvis.recipes.atlas` renders. From a notebook::

    plan, model = plan_atlas(AtlasOptions(layers=("blocks.4",), units="0-15"), render={"steps": 64})
    for layer, units in batches(plan):
        result = UnitWorker(model, plan.device).render(layer.hook, units, plan.kind, plan.size,
                                                       plan.seed, plan.options, plan.prior)

No torch at import: ``--help`` reads the declarations.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from cnnvis.config import Options, group, setting
from cnnvis.defaults import ATLAS_BATCH, DEFAULT_MODEL, UNIT_KINDS
from cnnvis.errors import InputError
from cnnvis.priors.spec import PriorSpec
from cnnvis.recipes.options import activation_option, layers_option, out_option, size_option

LOCAL = "local"  # --ray alone: a Ray runtime started on this machine
# The render settings that do not change a unit's image (each unit has its own seed, see
# cnnvis.recipes.atlas.unit_seed), so they are left out of the settings a rerun compares.
_NOT_SETTINGS = ("batch_size", "seed")
# Prior flags at their defaults, left out of the settings (an atlas.json written before they existed matches).
_PRIOR_DEFAULTS = (None, "none", "auto", "crop", "remove")


@group("atlas")
class AtlasOptions(Options):
    """The atlas command's own options. Only ``layers`` is required; ``out``, ``ray_address``,
    ``workers``, ``force`` and ``quiet`` steer the CLI's driver (where it writes, where it renders,
    whether it draws progress), and :func:`plan_atlas` ignores them.

    ``units``: ``"0,5,9"``, ``"0-15"``, an int or a list of ints (the CLI hands a parsed list);
    None: every unit of each layer."""

    model_arg: str | None = setting(None, "The model, as --model (positional).", argument=True)
    layers: tuple[str, ...] = layers_option("Layer whose units to render (repeatable).")
    units: str | None = setting(
        None,
        "Units to render: a list or ranges (0-255, 0,5,9).",
        kind="units",
        default_text="every unit of each layer",
    )
    kind: str = setting("channel", "channel: the whole channel; neuron: its centre unit.", choices=UNIT_KINDS)
    activation: str = activation_option("Maximize units before or after the layer's activation.")
    size: str | None = size_option("Image size: model (the model input) or HxW.")
    out: str | None = out_option(None, "Atlas directory: one image per unit, contact sheets, atlas.json, index.html.")
    ray_address: str | None = setting(
        None,
        "Render on Ray: --ray alone starts a local runtime, --ray ADDRESS joins a cluster (ray://HOST:10001 or "
        "auto). Needs the ray extra.",
        flag="--ray",
        flag_value=LOCAL,
    )
    workers: int | None = setting(
        None, "With --ray: the number of workers (each loads the model once).", low=1, default_text="1 locally"
    )
    force: bool = setting(
        False, "Render every unit again, over an atlas in --out (one made with other settings included)."
    )
    quiet: bool = setting(False, "No progress bar.", short="-q")

    def __post_init__(self):
        super().__post_init__()
        if not self.layers:
            raise InputError("an atlas needs a layer; name one with --layer NAME (repeatable), e.g. --layer blocks.4")
        if self.workers is not None and self.ray_address is None:
            raise InputError("--workers sets the number of Ray workers; add --ray (a local runtime) or --ray ADDRESS")


@dataclass
class LayerPlan:
    """One layer of the atlas: its name as given, the hooked name (pre/post activation resolved),
    its unit count and the units still to render."""

    name: str
    hook: str
    channels: int
    units: list[int]


@dataclass
class AtlasPlan:
    """An atlas resolved against its model: what every batch needs, and what ``atlas.json``
    records.

    ``model_name``/``weights``/``device``: how a worker loads the model (a Ray actor loads its
    own); ``size``: (H, W) pixels of every image; ``options``: the render settings given (the
    preferred-image defaults fill the rest); ``prior``: the generator prior's
    :class:`PriorSpec` (what travels to a worker: each loads its own generator from it);
    ``settings``: what a rerun compares (JSON values); ``command``: the command's words without
    the per-run flags, for each unit's own command."""

    model_name: str
    weights: str | None
    device: str
    kind: str
    size: tuple[int, int]
    seed: int
    batch: int
    options: dict
    prior: PriorSpec
    settings: dict
    layers: list[LayerPlan]
    command: list[str] = field(default_factory=list)


def plan_atlas(
    opts: AtlasOptions,
    *,
    model: str = DEFAULT_MODEL,
    weights: str | None = None,
    device: str = "auto",
    render: Mapping | None = None,
    prior: PriorSpec | None = None,
    seed: int = 0,
    batch: int = ATLAS_BATCH,
    command: Sequence[str] = (),
):
    """Load ``model`` once for the layers' shapes and check every unit range.

    Args:
        opts: the layers, units, kind, activation side and size.
        model, weights, device: as :func:`cnnvis.models.registry.load_model` takes them.
        render: render settings given over the preferred-image defaults (no ``batch_size`` or
            ``seed``: those are ``batch`` and ``seed``).
        prior: the generator prior, or None for pixels.
        seed: the run's seed; each unit draws from its own (:func:`cnnvis.recipes.atlas.unit_seed`).
        batch: units per batch.
        command: the command's words, for each unit's re-render command (the CLI's; empty from Python).

    Returns ``(plan, loaded model)``; the model renders too, in-process.
    """
    from cnnvis.models.registry import load_model
    from cnnvis.pipeline.device import pick_device
    from cnnvis.recipes.options import parse_size

    dev = pick_device(device)
    m = load_model(model, weights, dev)
    hw = parse_size(opts.size, m, None)
    layers = [_layer_plan(m, name, opts, hw) for name in dict.fromkeys(opts.layers)]
    render = dict(render or {})
    prior = prior or PriorSpec()
    prior_flags = dataclasses.asdict(prior)
    settings = {
        "model": m.name,
        "weights_sha256": m.weights_sha256,
        "kind": opts.kind,
        "activation": opts.activation,
        "size": list(hw),
        "seed": seed,
        "render": {k: v for k, v in sorted(render.items()) if k not in _NOT_SETTINGS},
        "prior": {k: v for k, v in sorted(prior_flags.items()) if v not in _PRIOR_DEFAULTS},
    }
    settings = json.loads(json.dumps(settings))  # as atlas.json holds them: tuples become lists
    plan = AtlasPlan(
        model, weights, str(dev), opts.kind, hw, seed, batch, render, prior, settings, layers, list(command)
    )
    return plan, m


def _layer_plan(m, name: str, opts: AtlasOptions, hw: tuple[int, int]) -> LayerPlan:
    """One layer's plan: its hook, its unit count at ``hw``, and the wanted units, checked."""
    from cnnvis.models.capture import resolve_layer
    from cnnvis.recipes.recon import layer_shape
    from cnnvis.recipes.units import parse_units

    hook = resolve_layer(m.module, name, opts.activation)
    n = layer_shape(m, hook, hw)[0]
    try:
        wanted = parse_units(opts.units) if opts.units is not None else list(range(n))
    except ValueError as e:
        raise InputError(f"bad --units: {e}") from None
    outside = [u for u in wanted if not 0 <= u < n]
    if outside:
        raise InputError(f"unit {outside[0]} is outside layer '{name}' with {n} units; use --units 0-{n - 1}")
    return LayerPlan(name, hook, n, wanted)


def batches(plan: AtlasPlan) -> Iterator[tuple[LayerPlan, list[int]]]:
    """The plan's work: (layer, up to ``plan.batch`` of its units), layer by layer."""
    for lp in plan.layers:
        for i in range(0, len(lp.units), plan.batch):
            yield lp, lp.units[i : i + plan.batch]
