"""The deep generator network (DGN) prior: optimize a generator's latent code instead of pixels.

Nguyen et al. (2016, "Synthesizing the preferred inputs for neurons in neural networks via deep
generator networks") and icnn (Shen et al. 2019) search the input code of a generator trained to
invert a layer (Dosovitskiy & Brox 2016): every image the search can reach looks like the
generator's training photos, so preferred images and deep-layer reconstructions look natural.

How it fits the multiscale tiled pipeline (the design, chosen here; no earlier tool does this):

- The latent ``z`` is the optimized parameter; the canvas at each step is ``fit(G(z))`` and the
  objective's gradient reaches ``z`` through the same tiled image gradient as every other
  parameterization (tiles, transforms and regularizers are unchanged).
- **Spatial generators** (fully convolutional, e.g. the ``upconv`` generators that
  ``cnnvis train-generator`` makes, DeePSiM's pool5/conv ones) have a latent feature map that
  grows with the canvas: about one latent cell per ``stride`` x ``stride`` pixels (the smallest
  latent whose image covers the canvas, centre-cropped to it), so the prior holds
  at every size of the plan up to ``max_side``. Between sizes the latent map is resized
  (bilinear), which keeps the composition. This is "one latent per tile" made seamless: the
  latent cells are the tiles and neighbouring cells share the generator's convolutions.
- **Vector generators** (DeePSiM fc6/fc7/fc8) have one fixed output size (256 px). Their image
  is centre-cropped to the canvas when the canvas is smaller (icnn crops 227 of 256 for AlexNet)
  and resized otherwise; the same ``z`` carries over between sizes.
- Above ``max_side`` (default: the output size for vector generators, 1024 px for spatial ones,
  whose whole-canvas generator pass would otherwise need memory that grows with the canvas), the
  run continues as a **pixel-space refinement** started from the upsampled generator image: the
  DGN fixes the composition and the natural look, the tiled pixel stages add detail at a memory
  cost bounded by one tile.

Latent bounds follow icnn: after every step ``z`` is clipped to ``[0, upper]`` per channel, with
``upper`` from an activation-range file (icnn's ``act_range/3x``: 3 x the channel's standard
deviation over natural images) or the bound stored in the generator file.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cnnvis.canvas.sizes import Size, resize
from cnnvis.defaults import DEFAULT_MODEL
from cnnvis.errors import InputError
from cnnvis.priors.generators.base import Generator
from cnnvis.priors.lattice import remove_generator_lattice
from cnnvis.priors.spec import GENERATOR_FITS, LATENT_INITS, LATTICE_MODES, PriorSpec

SPATIAL_MAX_SIDE = 1024
AUTO = "auto"  # --prior auto: the command's default, resolved by the recipe that knows its layers (default_prior)


@dataclass
class DGNPrior:
    """A generator prior for :class:`cnnvis.pipeline.loop.Render`.

    Attributes:
        generator: latent -> image (see :class:`cnnvis.priors.generators.base.Generator`).
        upper: (C,) per-channel upper bound of the latent, or ``None`` for no clipping.
        init: ``auto`` (the encoding of the init image when there is one and an encoder layer
            is known, else noise), ``zeros``, ``noise`` or ``image``; or a latent tensor
            (1, *latent_shape) to start from.
        encoder_layer: the model layer whose features are the latent (the layer the generator
            inverts); needed for ``image``.
        max_side: the largest canvas side optimized through the generator; larger sizes are
            refined in pixel space. ``None``: the output side (vector) or 1024 (spatial).
        fit: how a vector generator's output meets the canvas: ``crop`` (centre crop when
            larger, resize when smaller) or ``resize``.
        lower: (C,) or a number: the lower bound (icnn's ``feat_lower_bound``); ``None`` means 0
            when ``upper`` is set (icnn's ``[0, upper]``) and no bound otherwise. Give
            ``-inf`` for signed latents such as fc8 logits.
        lattice: ``remove`` (a spatial generator's image without the pattern it repeats every
            ``stride`` pixels: :mod:`cnnvis.priors.lattice`) or ``keep``.
    """

    generator: Generator
    upper: torch.Tensor | None = None
    init: str | torch.Tensor = "auto"
    encoder_layer: str | None = None
    max_side: int | None = None
    fit: str = "crop"
    lower: torch.Tensor | float | None = None
    lattice: str = "remove"

    def __post_init__(self):
        if isinstance(self.init, str) and self.init not in LATENT_INITS:
            raise InputError(f"unknown latent init '{self.init}'; use one of {', '.join(LATENT_INITS)}")
        if self.fit not in GENERATOR_FITS:
            raise InputError(f"unknown generator fit '{self.fit}'; use one of {', '.join(GENERATOR_FITS)}")
        if self.lattice not in LATTICE_MODES:
            raise InputError(f"unknown --dgn-lattice '{self.lattice}'; use one of {', '.join(LATTICE_MODES)}")
        if self.max_side is not None and self.max_side < 1:
            raise InputError(f"--dgn-max-side must be positive, got {self.max_side}")

    def side_limit(self) -> int:
        if self.max_side is not None:
            return self.max_side
        return SPATIAL_MAX_SIDE if self.generator.spatial else max(self.generator.output_size)

    def draw(self, z: torch.Tensor) -> torch.Tensor:
        """The generator's RGB image (B, 3, H, W) in [0, 1] of the latent ``z`` (B, *latent_shape),
        without its lattice unless ``lattice`` is ``keep``; differentiable with respect to ``z``."""
        g = self.generator
        if self.lattice == "keep" or not g.spatial or g.stride < 2:
            return g.image(z)
        return remove_generator_lattice(g.to_rgb(g(z)), g.stride).clamp(0, 1)

    def latent_shape(self, size: Size, batch: int = 1) -> tuple[int, ...]:
        """(batch, *shape) of the latent for ``batch`` canvases of ``size``."""
        g = self.generator
        if not g.spatial:
            return (batch, *g.latent_shape)
        return (batch, g.latent_shape[0], *g.latent_hw(size))


def _center_crop(x: torch.Tensor, size: Size) -> torch.Tensor:
    h, w = x.shape[-2:]
    y0, x0 = (h - size[0]) // 2, (w - size[1]) // 2
    return x[..., y0 : y0 + size[0], x0 : x0 + size[1]]


class GeneratorImage:
    """N images (N, 3, H, W) ``fit(G(z))`` with ``z`` the optimized latent; same interface as
    :class:`cnnvis.params.fourier.FourierImage` (``parameters``, ``image``, ``resized``) plus ``project_``.

    Args:
        prior: the generator and its bounds.
        size: (H, W) of the canvas.
        z: the latent (N, *latent_shape) to start from (copied).
    """

    def __init__(self, prior: DGNPrior, size: Size, z: torch.Tensor):
        self.prior, self.size = prior, tuple(size)
        want = prior.latent_shape(self.size, z.shape[0] if z.dim() else 1)
        if tuple(z.shape) != want:
            raise InputError(
                f"latent of shape {tuple(z.shape)} does not fit the {prior.generator.arch} generator at "
                f"{size[0]}x{size[1]}; expected {want}"
            )
        self.z = z.detach().clone().float().requires_grad_(True)
        self.project_()

    def parameters(self) -> list[torch.Tensor]:
        return [self.z]

    def image(self) -> torch.Tensor:
        """(N, 3, H, W) RGB in [0, 1], differentiable with respect to ``z``."""
        x = self.prior.draw(self.z)
        h, w = self.size
        if tuple(x.shape[-2:]) == (h, w):
            return x
        if self.prior.generator.spatial or (self.prior.fit == "crop" and x.shape[-2] >= h and x.shape[-1] >= w):
            return _center_crop(x, self.size)
        return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)

    @torch.no_grad()
    def project_(self) -> None:
        """Clip the latent to [lower, upper] per channel (icnn: [0, upper]), where bounds are set."""
        up, low = self.prior.upper, self.prior.lower
        if low is None and up is not None:
            low = 0.0
        shape = (1, -1, *([1] * (self.z.dim() - 2)))
        if low is not None:
            self.z.clamp_(min=torch.as_tensor(low).to(self.z).expand(self.z.shape[1]).reshape(shape))
        if up is not None:
            self.z.clamp_(max=up.to(self.z).reshape(shape))

    def resized(self, size: Size) -> GeneratorImage:
        """The same code at another canvas size (a spatial latent map is resized bilinearly)."""
        z = self.z.detach()
        if self.prior.generator.spatial:
            shape = self.prior.latent_shape(size, z.shape[0])
            z = F.interpolate(z, size=shape[-2:], mode="bilinear", align_corners=False)
        return GeneratorImage(self.prior, size, z)


def encode(prior: DGNPrior, model, image: torch.Tensor, size: Size) -> torch.Tensor:
    """The latents (N, ...) of ``image`` (N, 3, H, W) in [0, 1]: its features at the encoder layer.

    A spatial generator's latent comes from the image at the canvas ``size``; a vector
    generator's from the image resized to the model's input size.
    """

    layer = prior.encoder_layer
    if layer is None:
        raise InputError(
            f"latent init 'image' needs the layer the {prior.generator.arch} generator inverts; this generator file "
            "does not name one: use --latent-init noise"
        )
    g = prior.generator
    side = (model.input_size, model.input_size) if not g.spatial else tuple(size)
    with model.capture([layer]) as cap, torch.no_grad():
        f = cap(model.normalize(resize(image, side)))[layer]
    want = prior.latent_shape(size, image.shape[0])
    if g.spatial and f.dim() == 4 and f.shape[1] == want[1]:
        return (
            F.interpolate(f, size=want[-2:], mode="bilinear", align_corners=False) if f.shape[-2:] != want[-2:] else f
        )
    f = f.flatten(1) if not g.spatial else f
    if tuple(f.shape) != want:
        raise InputError(
            f"{model.name}'s layer '{layer}' gives features {tuple(f.shape)} but the {g.arch} generator takes {want}; "
            "use the model the generator was trained for, or --latent-init noise"
        )
    return f


def initial_latent(
    prior: DGNPrior, size: Size, model, image: torch.Tensor | None, gen: torch.Generator, device, batch: int = 1
) -> torch.Tensor:
    """The starting latents (batch, *shape) at ``size``: from ``prior.init`` and the init image
    (one image shared by the batch, or one per batch image)."""
    shape = prior.latent_shape(size, batch)
    init = prior.init
    if isinstance(init, torch.Tensor):
        return _given_latent(prior, init.to(device, torch.float32), shape, batch)
    if init == "auto":
        init = "image" if image is not None and prior.encoder_layer is not None else "noise"
    if init == "image":
        if image is None:
            raise InputError(
                "latent init 'image' needs a start image to encode (dream's IMAGE, invert's --init FILE); "
                "or use --latent-init noise"
            )
        image = image.to(device)
        return encode(prior, model, image if image.shape[0] == batch else image.expand(batch, *image.shape[1:]), size)
    if init == "zeros":
        return torch.zeros(shape, device=device)
    return _noise_latent(prior, shape, gen).to(device)


def _given_latent(prior: DGNPrior, z: torch.Tensor, shape: tuple, batch: int) -> torch.Tensor:
    """A latent given as a tensor, batched and (spatial generators) resized to ``shape``."""
    if z.dim() == len(shape) - 1:
        z = z[None]
    if z.shape[0] == 1 and batch > 1:
        z = z.expand(batch, *z.shape[1:])
    if prior.generator.spatial and z.dim() == 4 and z.shape[:2] == shape[:2] and z.shape[-2:] != shape[-2:]:
        z = F.interpolate(z, size=shape[-2:], mode="bilinear", align_corners=False)
    if tuple(z.shape) != shape:
        raise InputError(
            f"initial latent has shape {tuple(z.shape)}; the {prior.generator.arch} generator needs {shape}"
        )
    return z


def _noise_latent(prior: DGNPrior, shape: tuple, gen) -> torch.Tensor:
    """Noise at the scale of natural codes: |N(0, 1)| * upper / 3 = a half-normal with the
    channel's standard deviation when the bound is icnn's 3 sigma. ``gen``: one generator, or one
    per image."""
    if isinstance(gen, (list, tuple)):
        z = torch.cat([torch.randn((1, *shape[1:]), generator=g) for g in gen]).abs()
    else:
        z = torch.randn(shape, generator=gen).abs()
    if prior.upper is not None:
        z = z * (prior.upper.view(1, -1, *([1] * (len(shape) - 2))) / 3)
    return z


DEMO_GENERATOR = "demo_generator_lite0.pt"
DEMO_MODEL = DEFAULT_MODEL  # the model the shipped demo generator inverts


def demo_generator_path() -> str:
    """The small generator shipped for the embedded model (see cnnvis/data/README.md)."""
    from importlib import resources

    return str(resources.files("cnnvis") / "data" / DEMO_GENERATOR)


def load_prior(
    model,
    generator: str | None = None,
    latent_bound: str | None = None,
    init: str | torch.Tensor = "auto",
    max_side: int | None = None,
    fit: str = "crop",
    device: torch.device | str = "cpu",
    lattice: str = "remove",
) -> DGNPrior:
    """A :class:`DGNPrior` from files: the generator (default: the shipped demo generator, for
    efficientnet-lite0 only), and latent bounds (default: the generator file's; ``"none"``: no
    clipping). ``model`` is the :class:`cnnvis.models.registry.LoadedModel` being visualized: it encodes
    images into latents when the generator was trained on its features."""
    from cnnvis.priors.generators.files import load_generator, read_latent_bound

    if generator is None:
        if model.name != DEMO_MODEL:
            raise InputError(
                f"--prior dgn has no shipped generator for {model.name}; train one with cnnvis train-generator "
                f"--model {model.name} and pass --generator FILE"
            )
        generator = demo_generator_path()
    gf = load_generator(generator, device)
    if latent_bound is None:
        upper = gf.latent_upper
    elif latent_bound == "none":
        upper = None
    else:
        upper = read_latent_bound(latent_bound, gf.generator)
    # Only the model the generator inverts can encode images into its latents.
    encoder = gf.layer if gf.model in (None, model.name) else None
    if init == "image" and encoder is None:
        raise InputError(
            f"--latent-init image needs {gf.model}, the model '{generator}' was trained on, not {model.name}; use "
            "--latent-init noise"
        )
    return DGNPrior(gf.generator, upper, init, encoder, max_side, fit, lattice=lattice)


def prior_of(spec: PriorSpec, model, device, layer_default: bool = False) -> DGNPrior | str | None:
    """The :class:`DGNPrior` that ``spec`` asks for, for ``model`` on ``device``, or None without
    one. ``auto`` is None, or with ``layer_default`` the string ``"auto"``: a recipe that knows
    its layers' strides resolves it (:func:`default_prior`)."""
    spec.check()
    if not spec.wanted:
        return AUTO if layer_default and spec.prior == AUTO else None
    return load_prior(
        model,
        spec.generator,
        spec.latent_bound,
        spec.latent_init,
        spec.dgn_max_side,
        spec.generator_fit,
        device,
        spec.dgn_lattice,
    )


def default_prior(model, strides, device, from_stride: int) -> DGNPrior | None:
    """``--prior auto`` for layers of ``strides`` (pixels per feature): the shipped generator of
    ``model`` when it has one and the deepest layer's stride is at least ``from_stride``, else None."""
    if model.name != DEMO_MODEL or not strides or max(strides) < from_stride:
        return None
    return load_prior(model, device=device)
