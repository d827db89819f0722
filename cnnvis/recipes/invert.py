"""The invert recipe (icnn): typed options, and the renders that reconstruct an image, the frames of
a video or a features file from a network's features.

:class:`InvertOptions` declares every option of ``cnnvis invert`` that is not a render setting,
a prior, a model, a video-coherence or an output option; the CLI generates its flags from it.
The renders come from :mod:`cnnvis.recipes.recon` (``image_render``, ``features_render``), with
the tuned defaults that depend on the layer. Nothing here prints or writes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from cnnvis.config import Options, group, setting
from cnnvis.defaults import DGN_INVERT_REFINE, FEATURE_LOSSES, INVERT_TOP_STARTS
from cnnvis.errors import InputError
from cnnvis.recipes.options import (
    activation_option,
    dgn_refine_option,
    layers_option,
    out_option,
    plain_defaults,
    size_option,
    tuned_default_texts,
)

VIDEO_INITS = ("previous", "noise")
INIT_NAMES = ("noise", "mean")  # --init values that are not image files


# How an inversion recorded before --starts existed ran: replay fills this in (cnnvis/cli/replay.py)
BEFORE_STARTS_SETTINGS = {"starts": 1}


@group("invert")
class InvertOptions(Options):
    """What an inversion reconstructs, from which features, and how they are compared."""

    image: str | None = setting(None, "The image (or video) to invert.", argument=True)
    features: str | None = setting(
        None, "Target features (.npz / .npy / .mat keyed by layer) instead of an IMAGE.", short="-f"
    )
    layers: tuple[str, ...] = layers_option(
        "Layer to invert (repeatable); with --features, the arrays to use.", default_text="all, with --features"
    )
    out: str = out_option("recon.png", "Output image, or a video (.mp4/.gif) for a video input.")
    loss: str = setting("l2", "Feature distance.", choices=FEATURE_LOSSES)
    size: str | None = size_option(
        "model (the model input, square; a video's default is fit), image (the image's own size, tiled), fit (the "
        "image's aspect, its longer side at the model input), or HxW."
    )
    activation: str = activation_option("Match features before or after the layer's activation.")
    init: str = setting("noise", "Start from noise, mean (grey), or an image file.")
    original: str | None = setting(None, "With --features: the image they came from, to measure quality.")
    layer_weights: tuple[str, ...] = setting(
        (), "LAYER=W (repeatable).", flag="--layer-weight", default_text="1/||f||^2, normalized"
    )
    channels: tuple[str, ...] = setting((), "LAYER=C1,C2,... match only these channels (repeatable).")
    masks: tuple[str, ...] = setting(
        (),
        "LAYER=FILE.npy: weight the layer's features by this mask, of the feature shape, (H, W) or (C,) (repeatable).",
        flag="--mask",
    )
    video_init: str = setting(
        "previous", "Video input: start each frame from the previous reconstruction, or afresh.", choices=VIDEO_INITS
    )
    dgn_refine: float = dgn_refine_option(DGN_INVERT_REFINE)
    starts: int | None = setting(
        None,
        "Render this many starts together and keep the one whose features match best.",
        low=1,
        default_text=f"{INVERT_TOP_STARTS} for the network's last layers (conv_head) from noise, else 1",
    )

    def check(self) -> None:
        """The checks across options, before anything loads (one line each)."""
        if (self.image is None) == (self.features is None):
            raise InputError("give an IMAGE (or video) to invert, or --features FILE, not both or neither")


def parse_pairs(items: Sequence[str], flag: str, cast) -> dict:
    """``LAYER=VALUE`` flags -> {layer: cast(value)}."""
    out = {}
    for item in items:
        layer, sep, value = item.partition("=")
        if not sep or not layer:
            raise InputError(f"bad {flag} '{item}'; write {flag} LAYER=VALUE")
        try:
            out[layer] = cast(value)
        except InputError:
            raise
        except ValueError:
            raise InputError(
                f"bad value in {flag} '{item}'; write {flag} LAYER=VALUE with a number (or comma-separated channels)"
            ) from None
    return out


def _channel_list(value: str) -> list[int]:
    return [int(v) for v in value.split(",") if v.strip()]


def _mask_file(path: str):
    """A feature mask from a .npy file (never a pickle)."""
    from cnnvis.io.features import load_features

    if not path.lower().endswith(".npy"):
        raise InputError(f"mask file '{path}' must be a .npy array")
    if not os.path.isfile(path):
        raise InputError(f"mask file '{path}' does not exist; check the path")
    return load_features(path, ["mask"])["mask"]


def resize_hwc(img, hw: tuple[int, int]):
    """H x W x 3 float in [0, 1] resized to ``hw`` by the pipeline's own rule
    (:func:`cnnvis.canvas.sizes.resize`)."""
    from cnnvis.canvas.sizes import resize
    from cnnvis.io.images import hwc_to_bchw
    from cnnvis.recipes.recon import to_hwc

    if img.shape[:2] == hw:
        return img
    return to_hwc(resize(hwc_to_bchw(img), hw))


@dataclass
class Inversion:
    """What every render of one inversion shares: the model, the hooked layer of each name, the
    start (``"noise"``, ``"mean"`` or an H x W x 3 image in [0, 1]) and the keyword arguments of
    :func:`cnnvis.recipes.recon.image_render` (loss, weights, masks, device, prior, tuned options)."""

    opts: InvertOptions
    model: object
    start: object
    common: dict

    def hook(self, name: str) -> str:
        """The hooked module of layer ``name`` on the options' side of the activation."""
        from cnnvis.models.capture import resolve_layer

        return resolve_layer(self.model.module, name, self.opts.activation)

    def keyed(self, d: dict) -> dict:
        return {self.hook(k): v for k, v in d.items()}

    def layers(self) -> list[str]:
        """The hooked layers of an image inversion's ``--layer`` flags."""
        if not self.opts.layers:
            raise InputError(f"name the layer(s) to invert with --layer (list them: cnnvis layers {self.model.name})")
        return [self.hook(name) for name in self.opts.layers]


def inversion(opts: InvertOptions, model, device, prior, options: dict) -> Inversion:
    """The shared part of an inversion's renders. ``options``: the render settings the user gave."""
    from cnnvis.io.images import read_image

    inv = Inversion(opts, model, None, {})
    inv.start = opts.init if opts.init in INIT_NAMES else read_image(opts.init)
    inv.common = dict(
        loss=opts.loss,
        layer_weight=inv.keyed(parse_pairs(opts.layer_weights, "--layer-weight", float)) or None,
        channel=inv.keyed(parse_pairs(opts.channels, "--channels", _channel_list)) or None,
        feature_mask=inv.keyed(parse_pairs(opts.masks, "--mask", _mask_file)) or None,
        device=device,
        prior=prior,
        dgn_refine=opts.dgn_refine,
        **options,
    )
    return inv


def features_inversion(inv: Inversion):
    """(render, the original resized to the render's size or None, the hooked layers) of an
    inversion of ``--features``."""
    from cnnvis.io.features import load_features
    from cnnvis.io.images import read_image
    from cnnvis.models.capture import layer_names
    from cnnvis.recipes.options import parse_size
    from cnnvis.recipes.recon import features_render

    opts, m = inv.opts, inv.model
    feats = load_features(opts.features, opts.layers, layer_names(m.module))
    targets = {inv.hook(k): v for k, v in feats.items()}
    hw = parse_size(opts.size, m, None)
    r = features_render(targets, m, initial_image=inv.start, size=hw, starts=opts.starts, **inv.common)
    ref = None if opts.original is None else resize_hwc(read_image(opts.original), hw)
    return r, ref, list(targets)


def image_inversion(inv: Inversion, image, start=None, penalties: Sequence = (), size: str | None = None):
    """(render, the image resized to the render's size, the hooked layers) of an inversion of
    ``image`` (H x W x 3 in [0, 1]); ``start`` replaces the options' start (a video frame's carried
    previous result), ``penalties`` are added to the render's (a video's temporal loss), ``size``
    replaces the options' ``--size`` (a video's frames: ``fit``)."""
    from cnnvis.recipes.options import parse_size
    from cnnvis.recipes.recon import image_render

    layers = inv.layers()
    ref = resize_hwc(image, parse_size(size or inv.opts.size, inv.model, image.shape[:2]))
    start = inv.start if start is None else start
    starts = inv.opts.starts if start is None else 1  # a video frame's carried start: every start would be alike
    r = image_render(ref, layers, inv.model, initial_image=start, penalties=penalties, starts=starts, **inv.common)
    return r, ref, layers


def fresh_start(inv: Inversion, hw: tuple[int, int]):
    """H x W x 3 in [0, 1]: what a video frame's pixels start from where nothing is carried (the
    ``--init`` image, or the model's mean colour)."""
    import numpy as np

    if isinstance(inv.start, str):
        return np.broadcast_to(np.asarray(inv.model.mean, np.float32), (*hw, 3))
    return resize_hwc(np.asarray(inv.start, np.float32), hw)


def render_default_texts() -> dict[str, str]:
    """--help's default of each render setting of ``invert``: its tuned defaults, by optimizer,
    layer and prior (:mod:`cnnvis.defaults`)."""
    from cnnvis import defaults as D

    base = {**plain_defaults(), **D.INVERT_DEFAULTS}
    optimizer = D.INVERT_DEFAULTS["optimizer"]
    by_optimizer = {o: {**base, **d} for o, d in D.INVERT_OPTIMIZER_DEFAULTS.items() if o != optimizer}
    base.update(D.INVERT_OPTIMIZER_DEFAULTS[optimizer])
    variants = [
        (f"at layers of stride <= {D.SHALLOW_STRIDE}", D.INVERT_SHALLOW_DEFAULTS),
        (f"at layers of stride >= {D.DEEP_STRIDE} on pixels", D.INVERT_DEEP_DEFAULTS),
        (f"on the last layers with {optimizer}", D.INVERT_TOP_DEFAULTS),
        (f"with --prior dgn, the default at stride >= {D.DGN_INVERT_STRIDE} of efficientnet-lite0", D.DGN_DEFAULTS),
    ]
    extra = {"shift": "no-shift; shift for an image larger than the model input"}
    return tuned_default_texts(base, by_optimizer, variants, extra)
