"""The researcher's API: ``reconstruct_image`` (icnn) and ``generate_image`` (cnnpref).

Both are thin front ends to the one pipeline (:class:`cnnvis.pipeline.loop.Render`): they turn
icnn-style options into a :class:`RenderConfig`, build an :class:`Invert` or
:class:`MaskedUnits` objective, run, and return float32 HxWx3 images in [0, 1].

Defaults (the tables in :mod:`cnnvis.defaults`) are the settings measured best in
``bench/inversion.py`` (bench/RESULTS.md), not
icnn's: Adam on pixels with a strong TV prior and a linear lr decay reaches the issue's
pixel-correlation targets at 200 iterations where icnn's defaults do not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

import cnnvis.params  # noqa: F401  (registers the --param and --optimizer kinds, whose tuned settings apply)
from cnnvis.canvas.sizes import Size
from cnnvis.canvas.start import Start
from cnnvis.config import OPTIMIZERS, PARAMS, SETTINGS, RenderConfig

# the tuned defaults (cnnvis.defaults), importable from here too: benches use them
from cnnvis.defaults import (  # noqa: F401
    DEEP_STRIDE,
    DEFAULT_MODEL,
    DGN_DEFAULTS,
    DGN_INVERT_REFINE,
    DGN_INVERT_STRIDE,
    DGN_PREFER_REFINE,
    INVERT_DEEP_DEFAULTS,
    INVERT_DEFAULTS,
    INVERT_LBFGS_DEEP_DEFAULTS,
    INVERT_OPTIMIZER_DEFAULTS,
    INVERT_SHALLOW_DEFAULTS,
    INVERT_TOP_DEFAULTS,
    INVERT_TOP_STARTS,
    PREFER_DEFAULTS,
    PREFER_MASK_DEFAULTS,
    PREFER_ONE_TILE_MAX,
    PREFER_PARAM_DEFAULTS,
    SHALLOW_STRIDE,
    TOP_DEPTH,
)
from cnnvis.errors import InputError, did_you_mean
from cnnvis.models.registry import LoadedModel, load_model
from cnnvis.objectives.base import Sum
from cnnvis.objectives.inversion import Invert, MaskedUnits, as_feature
from cnnvis.params.generator import GeneratorStages
from cnnvis.priors.dgn import AUTO, default_prior
from cnnvis.recipes.units import one_unit_mask
from cnnvis.regularize.terms import Terms


def _invert_defaults(strides: Sequence[float], depths: Sequence[float], options: Mapping, prior=None) -> dict:
    """The layer-dependent defaults, applied over INVERT_DEFAULTS and the optimizer's: with no
    optimizer given, L-BFGS up to stride 16 (:data:`INVERT_SHALLOW_DEFAULTS`); then what the
    kinds tuned (their ``tuned`` tables): the optimizer's ``invert_deep`` when the deepest layer
    has stride >= 8 (L-BFGS: a 2-pixel jitter), its ``invert_top`` on the last layers when no
    --param is given (Adam: the Fourier prior), else at stride >= 8 the parameterization's
    ``invert_deep`` (pixels: the deep-layer priors, whose blur needs pixels); with a generator
    prior, DGN_DEFAULTS instead."""
    if prior is not None:
        return dict(DGN_DEFAULTS)
    d: dict = {}
    optimizer = options.get("optimizer")
    if optimizer is None:
        shallow = bool(strides) and max(strides) <= SHALLOW_STRIDE
        d.update(INVERT_SHALLOW_DEFAULTS if shallow else {})
        optimizer = d.get("optimizer", INVERT_DEFAULTS["optimizer"])
    tuned = getattr(OPTIMIZERS.get(optimizer), "tuned", {})  # {} for an unknown name: the config refuses it
    param = options.get(
        "param", tuned.get("invert", {}).get("param", INVERT_DEFAULTS.get("param", SETTINGS["param"].default))
    )
    deep = bool(strides) and max(strides) >= DEEP_STRIDE
    if deep:
        d.update(tuned.get("invert_deep", {}))
    if depths and max(depths) >= TOP_DEPTH and "invert_top" in tuned and "param" not in options:
        d.update(tuned["invert_top"])
    elif deep:
        d.update(getattr(PARAMS.get(param), "tuned", {}).get("invert_deep", {}))
    return d


def layer_depth(module, layer: str) -> float:
    """How far through the network ``layer`` ends, in (0, 1]: the position of its last leaf
    module among all leaf modules, in registration order."""
    leaves = [n for n, m in module.named_modules() if n and not any(True for _ in m.children())]
    if not leaves:
        return 1.0
    mine = [i for i, n in enumerate(leaves) if n == layer or n.startswith(layer + ".")]
    return (max(mine) + 1) / len(leaves) if mine else 1.0


def _stride(feat_shape: Sequence[int], size: Size) -> float:
    """Input pixels per feature-map pixel; fully connected features count as infinitely deep."""
    return size[-1] / feat_shape[-1] if len(feat_shape) >= 3 else float("inf")


# icnn's option names -> (cnnvis name, factor). icnn works in 0..255 pixel units, cnnvis in [0, 1].
ICNN_ALIASES = {
    "iter_n": ("steps", 1),
    "lr_start": ("lr", 1 / 255),
    "lr_end": ("lr_end", 1 / 255),
    "momentum_start": ("momentum", 1),
    "momentum_end": ("momentum_end", 1),
    "decay_start": ("pixel_decay", 1),
    "decay_end": ("pixel_decay_end", 1),
    "grad_normalize": ("normalize_grad", 1),
    "jitter_size": ("jitter", 1),
    "sigma_start": ("blur_sigma", 1),
    "sigma_end": ("blur_sigma_end", 1),
    "e_pct_start": ("clip_extreme", 1),
    "e_pct_end": ("clip_extreme_end", 1),
    "n_pct_start": ("clip_small_norm", 1),
    "n_pct_end": ("clip_small_norm_end", 1),
    "c_pct_start": ("clip_small_contrib", 1),
    "c_pct_end": ("clip_small_contrib_end", 1),
    "tv_lambda": ("tv_weight", 1),
    "TVlambda": ("tv_weight", 1),
    "maxiter": ("steps", 1),
}
_CFG_NAMES = set(RenderConfig.field_names())


def _config(
    defaults: Mapping,
    options: Mapping,
    per_optimizer: Mapping[str, Mapping] | None = None,
    layer_defaults: Mapping | None = None,
) -> RenderConfig:
    """Merge defaults, the chosen optimizer's defaults, layer-dependent defaults, then the
    user's icnn aliases and cnnvis names into a RenderConfig (later wins); unknown names fail
    with a close match."""
    kw = dict(defaults)
    chosen = options.get("optimizer", (layer_defaults or {}).get("optimizer", kw.get("optimizer")))
    if per_optimizer and chosen in per_optimizer:
        kw.update(per_optimizer[chosen])
    kw.update(layer_defaults or {})
    for name, value in options.items():
        if name in ICNN_ALIASES:
            target, factor = ICNN_ALIASES[name]
            kw[target] = value * factor if factor != 1 and value is not None else value
        elif name in (
            "image_blur",
            "image_jitter",
            "clip_extreme",
            "clip_small_norm",
            "clip_small_contribution",
        ) and isinstance(value, bool):
            _icnn_switch(kw, name, value)
        elif name in _CFG_NAMES:
            kw[name] = value
        else:
            known = sorted(_CFG_NAMES | set(ICNN_ALIASES))
            raise InputError(f"unknown option '{name}'{did_you_mean(name, known)}")
    return RenderConfig(**kw)


def _icnn_switch(kw: dict, name: str, on: bool) -> None:
    """icnn's on/off switches: image_blur -> blur every step; clip_* -> their percentile."""
    if name == "image_blur":
        kw["blur_every"] = 1 if on else 0
        kw.setdefault("blur_sigma", 2.0)
        kw.setdefault("blur_sigma_end", 0.5)
    elif name == "image_jitter":
        kw["jitter"] = kw.get("jitter", 32) if on else 0
    else:
        key = {
            "clip_extreme": "clip_extreme",
            "clip_small_norm": "clip_small_norm",
            "clip_small_contribution": "clip_small_contrib",
        }[name]
        if not on:
            kw[key] = 0.0
        elif not kw.get(key):
            kw[key] = 1.0


def _model(model) -> LoadedModel:
    return model if isinstance(model, LoadedModel) else load_model(str(model))


def _init_tensor(init, size: Size, model: LoadedModel) -> torch.Tensor | None:
    """``"noise"`` -> None (the pipeline's seeded noise); ``"mean"`` -> the mean colour; an image
    (HxWx3 array in [0, 1] or uint8, or (1, 3, H, W) tensor) resized to ``size``."""
    from cnnvis.canvas.sizes import resize

    if init is None or (isinstance(init, str) and init == "noise"):
        return None
    if isinstance(init, str) and init == "mean":
        return torch.tensor(model.mean, dtype=torch.float32).view(1, 3, 1, 1).expand(1, 3, *size).contiguous()
    if isinstance(init, str):
        raise InputError(f"unknown init '{init}'; use noise, mean, or pass an image array")
    return resize(_as_bchw(init), size)


def _as_bchw(image) -> torch.Tensor:
    """An image as (1, 3, H, W) float32: a tensor of that shape, or any HxWx3 / HxW array."""
    from cnnvis.io.images import hwc_to_bchw, to_float_rgb

    if isinstance(image, torch.Tensor) and image.dim() == 4:
        return image.float()
    return hwc_to_bchw(to_float_rgb(np.asarray(image)))


def to_hwc(x: torch.Tensor, item: int = 0) -> np.ndarray:
    """Image ``item`` of a canvas (N, C, H, W) as float32 (H, W, C), clipped to [0, 1] (C = 4: RGBA)."""
    return x.detach()[item].permute(1, 2, 0).clamp(0, 1).cpu().numpy().astype(np.float32)


def reconstruct_image(
    features: Mapping[str, object],
    model=DEFAULT_MODEL,
    *,
    loss: str = "l2",
    layer_weight: Mapping[str, float] | None = None,
    feature_mask: Mapping[str, object] | None = None,
    channel: Mapping[str, Sequence[int]] | None = None,
    initial_image="noise",
    size: Size | None = None,
    device: str | torch.device = "cpu",
    callback: Callable | None = None,
    **options,
) -> tuple[np.ndarray, list[float]]:
    """Reconstruct an image from CNN features (icnn, Shen et al. 2019).

    Args:
        features: layer name -> activations (C, H, W), (1, C, H, W) or (N,), numpy or torch,
            taken pre-activation where the layer has one (see :func:`cnnvis.models.capture.resolve_layer`).
        model: a :class:`LoadedModel` or a registry name.
        loss: l2 | l1 | inner | gram | corr.
        layer_weight: layer -> weight; default ``1 / ||f||^2`` normalized to sum to one.
        feature_mask: layer -> mask (full shape, (H, W) or (C,)); channel: layer -> channel list.
        initial_image: ``"noise"``, ``"mean"`` or an image (HxWx3 in [0, 1] or uint8).
        size: (H, W) of the image the features were computed at; default the model input.
        callback: called with each :class:`cnnvis.pipeline.progress.Progress`.
        **options: any :class:`RenderConfig` field, or icnn's names (``iter_n``, ``lr_start``,
            ``lr_end`` in 0..255 units, ``momentum_start``, ``decay_start``, ``image_blur``,
            ``sigma_start``, ``clip_extreme``, ``e_pct_start``, ...).

    Returns:
        ``(img, loss_list)``: float32 (H, W, 3) in [0, 1], and the feature loss of each iteration.
    """
    r = features_render(
        features,
        model,
        loss=loss,
        layer_weight=layer_weight,
        feature_mask=feature_mask,
        channel=channel,
        initial_image=initial_image,
        size=size,
        device=device,
        **options,
    )
    return run_with_losses(r, callback)


def features_render(
    features: Mapping[str, object],
    model=DEFAULT_MODEL,
    *,
    loss="l2",
    layer_weight=None,
    feature_mask=None,
    channel=None,
    initial_image="noise",
    size: Size | None = None,
    device="cpu",
    prior=AUTO,
    dgn_refine: float = DGN_INVERT_REFINE,
    starts: int | None = None,
    **options,
):
    """The :class:`Render` behind :func:`reconstruct_image` (built, probed, not run); ``prior``,
    ``dgn_refine`` and ``starts`` as in :func:`image_render`."""
    m = _model(model)
    targets = {k: as_feature(k, v) for k, v in features.items()}
    objective = Invert(targets, loss=loss, weights=layer_weight, masks=feature_mask, channels=channel)
    size = tuple(size) if size is not None else (m.input_size, m.input_size)
    kw = dict(options)
    if m.fixed_size and max(size) > m.input_size:
        raise InputError(
            f"features of {m.name} describe one {m.input_size}x{m.input_size} input; "
            f"invert them at --size {m.input_size}x{m.input_size} (or smaller)"
        )
    # fixed targets are the features of the whole image: the canvas is one tile
    kw.setdefault("tile", one_tile(m, size))
    strides = [_stride(t.shape[1:], size) for t in targets.values()]
    depths = [layer_depth(m.module, k) for k in targets]
    prior = _layer_prior(prior, m, strides, device)
    cfg, refine = _invert_stages(kw, strides, depths, prior, dgn_refine)
    if cfg.num_sizes != 1 or cfg.octaves not in (None, 1) or cfg.initial_size or cfg.final_size:
        raise InputError(
            "fixed target features define one image size; multiscale inversion needs a reference image (invert_image)"
        )
    n = invert_starts(starts, depths, initial_image)
    start = Start(init=_init_tensor(initial_image, size, m), size=size, batch=n, keep_best=n > 1)
    return _render(m, objective, cfg, start, device, _stages(_inversion_prior(prior, initial_image), refine))


def invert_image(
    image,
    layers: Sequence[str],
    model=DEFAULT_MODEL,
    *,
    loss: str = "l2",
    layer_weight=None,
    feature_mask=None,
    channel=None,
    initial_image="noise",
    device="cpu",
    callback=None,
    **options,
) -> tuple[np.ndarray, list[float]]:
    """Reconstruct ``image`` (HxWx3, or (1, 3, H, W) in [0, 1]) from its own features at ``layers``.

    At the model input size this equals :func:`reconstruct_image` on the image's features. At
    larger sizes it runs the tiled, multiscale pipeline: every tile is matched against the
    image's features over the same window (see :class:`Invert`), so memory stays bounded by a
    tile. Sizes follow ``initial_size`` / ``final_size`` / ``num_sizes`` / ``octaves`` relative to
    the image.
    """
    r = image_render(
        image,
        layers,
        model,
        loss=loss,
        layer_weight=layer_weight,
        feature_mask=feature_mask,
        channel=channel,
        initial_image=initial_image,
        device=device,
        **options,
    )
    return run_with_losses(r, callback)


def image_render(
    image,
    layers: Sequence[str],
    model=DEFAULT_MODEL,
    *,
    loss="l2",
    layer_weight=None,
    feature_mask=None,
    channel=None,
    initial_image="noise",
    device="cpu",
    prior=AUTO,
    dgn_refine: float = DGN_INVERT_REFINE,
    penalties: Sequence = (),
    starts: int | None = None,
    **options,
):
    """The :class:`Render` behind :func:`invert_image` (built, probed, not run).

    ``prior``: a :class:`cnnvis.priors.dgn.DGNPrior`, None (pixels), or ``"auto"``: the model's
    shipped generator from layers of stride :data:`cnnvis.defaults.DGN_INVERT_STRIDE` (the deep
    layers of efficientnet-lite0), else pixels. With a generator prior, the share ``dgn_refine``
    of the steps (0 <= share < 1) refines the generator's image in pixel space, at the last size,
    under the pixel defaults of the layers (:func:`_invert_stages`). ``penalties`` are added to
    the inversion's own regularizers (a video's temporal loss). ``starts``: render this many starts
    together and keep the one whose features match best; None: :data:`INVERT_TOP_STARTS` for the
    network's last layers from a noise start, else 1 (:func:`invert_starts`)."""
    m = _model(model)
    ref = _as_bchw(image)
    objective = Invert(
        reference=ref, layers=layers, loss=loss, weights=layer_weight, masks=feature_mask, channels=channel
    )
    kw = dict(options)
    if max(ref.shape[-2:]) > m.input_size:
        kw.setdefault("shift", True)  # a new tile grid each step: no seams
    probe = (m.input_size, m.input_size)
    from cnnvis.models.capture import check_layers

    check_layers(m.module, layers, m.name)
    strides = [_stride(layer_shape(m, layer, probe), probe) for layer in layers]
    depths = [layer_depth(m.module, layer) for layer in layers]
    prior = _layer_prior(prior, m, strides, device)
    cfg, refine = _invert_stages(kw, strides, depths, prior, dgn_refine)
    size = tuple(ref.shape[-2:])
    n = invert_starts(starts, depths, initial_image)
    start = Start(init=_init_tensor(initial_image, size, m), size=size, batch=n, keep_best=n > 1)
    stages = _stages(_inversion_prior(prior, initial_image), refine)
    return _render(m, objective, cfg, start, device, stages, Terms(penalties=tuple(penalties)))


def invert_starts(starts: int | None, depths: Sequence[float], initial_image) -> int:
    """How many starts an inversion renders: ``starts`` as given (>= 1), else
    :data:`INVERT_TOP_STARTS` where every layer is past :data:`TOP_DEPTH` of the network and the
    start is noise (a start image gives every start the same picture), else 1."""
    if starts is not None:
        if int(starts) < 1:
            raise InputError(f"--starts must be at least 1, got {starts}")
        return int(starts)
    noise = isinstance(initial_image, str) and initial_image == "noise"
    return INVERT_TOP_STARTS if noise and depths and min(depths) >= TOP_DEPTH else 1


def _layer_prior(prior, model: LoadedModel, strides: Sequence[float], device):
    """``prior`` with ``"auto"`` resolved for layers of ``strides`` (:func:`cnnvis.priors.dgn.default_prior`)."""
    if not isinstance(prior, str):
        return prior
    if prior != AUTO:
        raise InputError(f"prior must be a DGNPrior, None or 'auto', got {prior!r}")
    return default_prior(model, strides, device, DGN_INVERT_STRIDE)


def _invert_stages(kw: Mapping, strides, depths, prior, dgn_refine: float) -> tuple[RenderConfig, RenderConfig | None]:
    """The inversion's settings, and with a generator prior its pixel refinement's (the layer's
    pixel defaults: L-BFGS on the Fourier image up to stride 16, Adam deeper). The prior alone
    cannot draw unseen photos better than it decodes them (pixel correlation 0.715 for the demo
    generator), below what blocks.1 pins down; the refinement keeps what the generator drew
    where the features leave it open (bench/dgn.py)."""
    cfg = _config(INVERT_DEFAULTS, kw, INVERT_OPTIMIZER_DEFAULTS, _invert_defaults(strides, depths, kw, prior))
    if prior is None:
        return cfg, None
    return _split_steps(
        cfg,
        _config(INVERT_DEFAULTS, kw, INVERT_OPTIMIZER_DEFAULTS, _invert_defaults(strides, depths, kw, None)),
        dgn_refine,
    )


def _split_steps(cfg: RenderConfig, pixel_cfg: RenderConfig, share: float) -> tuple[RenderConfig, RenderConfig | None]:
    """``cfg`` with its last ``round(steps * share)`` steps handed to a refinement under
    ``pixel_cfg`` (:class:`cnnvis.params.generator.GeneratorStages`'s ``refine``); none when that rounds to
    no step (``share`` 0) or to every step."""
    if not 0 <= share < 1:
        raise InputError(f"--dgn-refine must be in [0, 1), got {share}; e.g. 0.5 refines pixels for half the steps")
    n = round(cfg.steps * share)
    if n < 1 or n >= cfg.steps:
        return cfg, None
    return cfg.replace(steps=cfg.steps - n), pixel_cfg.replace(steps=n)


def _inversion_prior(prior, initial_image):
    """From a noise start, the latent starts as noise at the scale of natural codes (each
    channel a half-normal with its standard deviation), not as the code of the noise image
    (``auto``), a noise texture that the search does not leave, nor as icnn's zero code: on the
    validation photos at blocks.5 the demo generator reaches a pixel correlation of 0.41 from
    it against 0.08 from zeros (200 steps, half refined; bench/RESULTS.md, issue 14)."""
    if (
        prior is None
        or not isinstance(initial_image, str)
        or initial_image != "noise"
        or not isinstance(prior.init, str)
        or prior.init != "auto"
    ):
        return prior
    return dataclasses.replace(prior, init="noise")


def _stages(prior, refine: RenderConfig | None) -> GeneratorStages | None:
    """A generator ``prior``'s stages with its ``refine`` settings; ``None`` (pixels throughout)
    without a prior."""
    return None if prior is None else GeneratorStages(prior, refine)


def _render(m, objective, cfg: RenderConfig, start: Start, device, stages: GeneratorStages | None, terms=None):
    from cnnvis.pipeline.device import pick_device
    from cnnvis.pipeline.loop import Render

    dev = pick_device(device) if isinstance(device, str) else device
    return Render(m, objective, cfg, start, dev, stages=stages, terms=terms)


def run_with_losses(r, callback=None) -> tuple[np.ndarray | list[np.ndarray], list[float]]:
    """Run a :class:`Render`; return its image(s) as float32 (H, W, 3) (a list for a batch) and
    minus the score of every step (the feature loss, for inversions)."""
    losses: list[float] = []

    def on_step(p):
        losses.append(-p.score)
        if callback is not None:
            callback(p)

    out = r.run(on_step)
    images = [to_hwc(out, i) for i in range(out.shape[0])]
    return (images[0] if len(images) == 1 else images), losses


# ---------------------------------------------------------------------------------- cnnpref
def layer_shape(m: LoadedModel, layer: str, size: Size) -> tuple[int, ...]:
    """The activation shape of ``layer`` (without batch) for an input of ``size``."""

    with m.capture([layer]) as cap, torch.no_grad():
        return tuple(cap(m.normalize(torch.full((1, 3, *size), 0.5)))[layer].shape[1:])


def unit_mask(
    model, layer: str, channel: int, x: int | None = None, y: int | None = None, size: Size | None = None
) -> np.ndarray:
    """A feature mask selecting one unit: channel ``channel`` at (y, x) (default the centre) of a
    convolutional layer, or unit ``channel`` of a fully connected one. Shape: the layer's."""
    m = _model(model)
    size = tuple(size) if size else (m.input_size, m.input_size)
    return one_unit_mask(layer_shape(m, layer, size), channel, x, y, layer=layer)


def receptive_field_mask(model, layer: str, feature_mask, size: Size | None = None, seed: int = 0) -> np.ndarray:
    """(H, W) 0/1 mask of the input pixels that reach the masked units: the bounding box of the
    non-zero gradient of ``sum(mask * features)`` with respect to a noise image (cnnpref's method).

    For low layers this is a small box; deep units see (nearly) the whole image.
    """

    m = _model(model)
    size = tuple(size) if size else (m.input_size, m.input_size)
    obj = MaskedUnits(layer, feature_mask)
    x = (0.5 + 0.1 * torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(seed))).requires_grad_(True)
    with m.capture([layer]) as cap:
        feats = cap(m.normalize(x))
        obj.check({k: v.detach() for k, v in feats.items()})
        (g,) = torch.autograd.grad((feats[layer] * obj.mask).sum(), x)
    hit = g.abs().sum(1)[0] > 0
    out = np.zeros(size, np.float32)
    if hit.any():
        ys, xs = torch.nonzero(hit, as_tuple=True)
        out[int(ys.min()) : int(ys.max()) + 1, int(xs.min()) : int(xs.max()) + 1] = 1
    return out


def generate_image(
    model,
    layer: str,
    feature_mask,
    *,
    image_mask=None,
    initial_image="noise",
    size: Size | None = None,
    device="cpu",
    callback: Callable | None = None,
    **options,
) -> np.ndarray:
    """The preferred image of the units selected by ``feature_mask`` at ``layer`` (cnnpref).

    Args:
        feature_mask: weights of the units, broadcastable to the layer's activations (see
            :class:`MaskedUnits`); :func:`unit_mask` builds the one-unit case.
        image_mask: (H, W) in [0, 1]: only these pixels change, the rest stay the mean colour;
            ``"rf"`` uses :func:`receptive_field_mask` (cnnpref does this for lower layers).
        **options: as for :func:`reconstruct_image`; defaults are the measured best for
            activation maximization (Fourier parameterization with transformation robustness).

    Returns:
        float32 (H, W, 3) in [0, 1]; for a list of feature masks (one image per mask, rendered
        as one batch), a list of them.
    """
    img, _ = run_with_losses(
        prefer_render(
            model,
            layer,
            feature_mask,
            image_mask=image_mask,
            initial_image=initial_image,
            size=size,
            device=device,
            **options,
        ),
        callback,
    )
    return img


def _mask_list(feature_mask) -> list | None:
    """A list of unit masks (arrays or tensors) means one image per mask; else None."""
    if (
        isinstance(feature_mask, list)
        and feature_mask
        and all(isinstance(f, (np.ndarray, torch.Tensor)) for f in feature_mask)
    ):
        return feature_mask
    return None


def prefer_render(
    model,
    layer: str,
    feature_mask,
    *,
    image_mask=None,
    initial_image="noise",
    size: Size | None = None,
    device="cpu",
    prior=None,
    item_seeds: Sequence[int] | None = None,
    **options,
):
    """The :class:`Render` behind :func:`generate_image` (built, probed, not run). A list of
    feature masks renders one image per mask, all in one batch; ``item_seeds`` give each image
    its own noise start."""
    m = _model(model)
    size = tuple(size) if size is not None else (m.input_size, m.input_size)
    many = _mask_list(feature_mask)
    if many is not None:
        objective = (
            Sum([(1.0, MaskedUnits(layer, f).on(i)) for i, f in enumerate(many)])
            if len(many) > 1
            else MaskedUnits(layer, many[0])
        )
    else:
        objective = MaskedUnits(layer, feature_mask)
    if isinstance(image_mask, str):
        if image_mask != "rf":
            raise InputError(f"unknown image mask '{image_mask}'; use 'rf' or pass an (H, W) array")
        # the units of a batch share a position: the union of their fields
        union = feature_mask if many is None else np.sum([np.asarray(f, np.float32) for f in many], axis=0)
        image_mask = receptive_field_mask(m, layer, union, size)
    return objective_render(
        m,
        objective,
        image_mask=image_mask,
        initial_image=initial_image,
        size=size,
        device=device,
        prior=prior,
        batch=1 if many is None else len(many),
        item_seeds=item_seeds,
        **options,
    )


def one_tile(model, size: Size) -> int:
    """The tile that makes a canvas of ``size`` one tile: its longer side, or a fixed-size
    model's input size (a smaller canvas is enlarged to it)."""
    return model.input_size if model.fixed_size else max(size)


def objective_tile(model, size: Size) -> int:
    """The default tile of a preferred image of ``size``: the whole canvas up to
    :data:`cnnvis.defaults.PREFER_ONE_TILE_MAX` pixels a side, else the model's input size
    (bounded memory at any size)."""
    return one_tile(model, size) if max(size) <= PREFER_ONE_TILE_MAX else model.input_size


def objective_render(
    model,
    objective,
    *,
    image_mask=None,
    initial_image="noise",
    size: Size | None = None,
    device="cpu",
    prior=None,
    batch: int = 1,
    item_seeds: Sequence[int] | None = None,
    dgn_refine: float = DGN_PREFER_REFINE,
    **options,
):
    """A :class:`Render` of any objective with the preferred-image defaults (built, probed, not
    run): ``batch`` images, an optional (H, W) ``image_mask`` (only those pixels change). With a
    generator ``prior`` the share ``dgn_refine`` of the steps refines the generator's image under
    the preferred-image defaults (the Fourier image and its transforms)."""
    m = _model(model)
    size = tuple(size) if size is not None else (m.input_size, m.input_size)
    mask = None
    if image_mask is not None:
        mk = torch.as_tensor(np.asarray(image_mask), dtype=torch.float32)
        if tuple(mk.shape) != size:
            raise InputError(
                f"image mask has shape {tuple(mk.shape)} but the image is {size}; give an (H, W) mask of the image size"
            )
        mask = mk[None, None]
    kw = dict(options)
    kw.setdefault("tile", objective_tile(m, size))
    kw.setdefault(
        "batch_size", max(batch, INVERT_DEFAULTS["batch_size"])
    )  # one tile per image: the whole batch in one pass
    defaults = dict(PREFER_DEFAULTS)
    if mask is not None:
        # the Fourier image changes every pixel at once: a pixel mask needs the pixel parameterization
        defaults.update(PREFER_MASK_DEFAULTS)
    defaults.update(PREFER_PARAM_DEFAULTS.get(kw.get("param", defaults["param"]), {}))
    cfg, refine = _config(defaults, kw), None
    if prior is not None:
        cfg, refine = _split_steps(_config({**defaults, **DGN_DEFAULTS}, kw), cfg, dgn_refine)
    start = Start(init=_init_tensor(initial_image, size, m), size=size, mask=mask, batch=batch, item_seeds=item_seeds)
    return _render(m, objective, cfg, start, device, _stages(prior, refine))
