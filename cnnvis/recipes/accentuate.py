"""Feature accentuation (Hamblin, Fel et al. 2024): what a unit responds to *in this photo*.

The render starts from the photo (held in its own Fourier spectrum, or phase with ``--param
maco``, or pixels) and maximizes a channel or a neuron, while an :class:`cnnvis.objectives.anchor.
Anchor` term holds the image near the photo's own activations at an anchor layer. The anchor's
weight is balanced automatically, as faccent does: before the run, both terms' gradients are
measured on the photo (slightly perturbed, where the anchor's gradient is defined) and the anchor
is scaled so that its mean |gradient| equals the objective's, times ``--anchor-weight``.

It runs at the photo's own size through the tiler, so a 4K photo costs memory bounded by a tile
batch. Nothing here prints or writes.
"""

from __future__ import annotations

from cnnvis.config import Options, group, setting
from cnnvis.errors import InputError
from cnnvis.recipes.options import channel_option, out_option, position_option

# faccent's reg_alpha: the anchor's gradient as large as the objective's at the start
ANCHOR_WEIGHT = 1.0
# the perturbation (std, pixels in [0, 1]) of the photo on which the two gradients are compared
BALANCE_NOISE = 0.02


@group("accentuate")
class AccentuateOptions(Options):
    """What an accentuation shows: a unit of a layer, in a photo, anchored at a layer."""

    image: str | None = setting(None, "The photo to accentuate.", argument=True)
    layer: str | None = setting(None, "The layer of the unit. Required.", short="-l")
    channel: str | None = channel_option("The channel (or fully connected unit) index. Required.")
    nx: int | None = position_option("x", "A neuron's column in the feature map [default: the whole channel].")
    ny: int | None = position_option("y", "A neuron's row in the feature map [default: the whole channel].")
    anchor_layer: str | None = setting(
        None, "The layer whose activations stay near the photo's.", default_text="--layer"
    )
    anchor_weight: float = setting(
        ANCHOR_WEIGHT, "The anchor's strength, relative to the objective's gradient at the start.", low=0
    )
    size: str | None = setting(
        None, "Image size: image (the photo's own), model (the model input), fit or HxW.", default_text="image"
    )
    out: str = out_option("accent.png", "Output image.")

    def check(self) -> None:
        """One-line errors for what is missing, before anything loads."""
        if self.image is None:
            raise InputError("accentuate starts from a photo: cnnvis accentuate PHOTO --layer L --channel C")
        if self.layer is None or self.channel is None:
            raise InputError("name the unit to accentuate: --layer L --channel C")
        if len(self.units()) != 1:
            raise InputError(
                f"--channel {','.join(map(str, self.units()))}: accentuate one channel at a time; give one"
            )

    def units(self) -> list[int]:
        from cnnvis.recipes.units import parse_channels

        return parse_channels(self.channel)


def unit_objective(opts: AccentuateOptions):
    """The channel's mean, or the neuron at (--x, --y) of every tile's map."""
    from cnnvis.objectives.activation import Channel, Neuron

    c = opts.units()[0]
    if opts.nx is None and opts.ny is None:
        return Channel(opts.layer, c)
    return Neuron(opts.layer, c, opts.nx, opts.ny)


def anchor_balance(model, objective, anchor, photo, seed: int = 0) -> float:
    """mean |d objective / d x| over mean |d anchor / d x| at ``x`` = ``photo`` (1, 3, H, W)
    resized to the model's input size plus a little seeded noise: the factor that makes the
    anchor pull as hard as the objective pushes (faccent's gradient-ratio balance)."""
    import torch

    from cnnvis.canvas.sizes import resize
    from cnnvis.canvas.tiling import Window
    from cnnvis.objectives.base import Capture

    side = model.input_size
    ref = resize(photo, (side, side)).to(next(iter(model.module.parameters()), photo).device)
    noise = torch.randn(ref.shape, generator=torch.Generator().manual_seed(seed)).to(ref) * BALANCE_NOISE
    x = (ref + noise).clamp(0, 1).requires_grad_(True)
    layers = list(dict.fromkeys(objective.layers + anchor.layers))
    with model.capture(layers) as cap:
        with torch.no_grad():
            target = cap(model.normalize(ref))
        feats = cap(model.normalize(x))
    capture = Capture(x, feats, [Window(0, side, 0, side)], (side, side), {id(anchor.reference): target})
    (g_obj,) = torch.autograd.grad(objective.score(capture).sum(), x, retain_graph=True)
    (g_anchor,) = torch.autograd.grad(anchor.score(capture).sum(), x)
    return float(g_obj.abs().mean()) / max(float(g_anchor.abs().mean()), 1e-12)


def accentuate_render(opts: AccentuateOptions, model, device, given: dict, photo=None):
    """The render of an accentuation (call :meth:`AccentuateOptions.check` first): the photo's
    unit, accentuated, at the photo's size. ``given``: the render settings the user gave (the rest
    take prefer's tuned defaults); ``photo``: the photo (H, W, 3) in [0, 1] if already read."""
    from cnnvis.canvas.sizes import resize
    from cnnvis.io.images import hwc_to_bchw, read_image
    from cnnvis.models.capture import check_layers
    from cnnvis.objectives.anchor import Anchor
    from cnnvis.objectives.base import Sum
    from cnnvis.recipes.options import parse_size
    from cnnvis.recipes.recon import objective_render

    photo = hwc_to_bchw(read_image(opts.image) if photo is None else photo)
    hw = parse_size(opts.size or "image", model, tuple(photo.shape[-2:]))
    photo = resize(photo, hw).clamp(0, 1)
    anchor_layer = opts.anchor_layer or opts.layer
    check_layers(model.module, [opts.layer, anchor_layer], model.name)
    objective = unit_objective(opts)
    anchor = Anchor(anchor_layer, photo)
    balance = anchor_balance(model, objective, anchor, photo)
    total = Sum([(1.0, objective), (opts.anchor_weight * balance, anchor)])
    return objective_render(model, total, initial_image=photo, size=hw, device=device, **given)
