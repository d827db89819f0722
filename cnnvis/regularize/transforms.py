"""Transformation robustness applied to tiles before the network (differentiable), and the
composite of RGBA tiles over random backgrounds."""

from __future__ import annotations

import torch


def jitter_roll(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Roll the tile batch (B, C, h, w) by a random (dy, dx) in [-max_shift, max_shift] pixels.

    Google's deepdream rolls the image by a random offset every step so that the network
    never sees the same pixel grid twice; ``torch.roll`` is differentiable, so the gradient is
    rolled back exactly. ``max_shift = 0`` returns ``x`` unchanged.
    """
    if max_shift <= 0:
        return x
    dy, dx = (int(v) for v in torch.randint(-max_shift, max_shift + 1, (2,), generator=gen))
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


def random_affine(x: torch.Tensor, max_scale: float, max_degrees: float, gen: torch.Generator) -> torch.Tensor:
    """Zoom by a factor in [1 - max_scale, 1 + max_scale] and rotate by up to ``max_degrees``
    about the centre of the tile batch (B, C, h, w), one draw per batch (kornia, reflected border).

    Transformation robustness (Mordvintsev et al. 2015; Olah et al. 2017): a visualization that
    survives small zooms and rotations is made of structure the network reads, not of
    adversarial pixel patterns. Differentiable, so the gradient is warped back.
    """
    if max_scale <= 0 and max_degrees <= 0:
        return x
    from kornia.geometry.transform import get_rotation_matrix2d, warp_affine

    u = torch.rand(2, generator=gen) * 2 - 1
    b, _, h, w = x.shape
    centre = torch.tensor([[(w - 1) / 2, (h - 1) / 2]], dtype=x.dtype, device=x.device).expand(b, 2)
    angle = torch.full((b,), float(u[0]) * max_degrees, dtype=x.dtype, device=x.device)
    scale = torch.full((b, 2), 1 + float(u[1]) * max_scale, dtype=x.dtype, device=x.device)
    m = get_rotation_matrix2d(centre, angle, scale)
    return warp_affine(x, m, (h, w), padding_mode="reflection", align_corners=True)


def random_crop(x: torch.Tensor, fraction: float, gen: torch.Generator) -> torch.Tensor:
    """A random crop of the tile batch (B, C, h, w), ``fraction`` of each side, at one position drawn
    for the batch.

    horama and faccent score random crops of their canvas (Fel et al. 2023); a crop of fraction f costs
    f^2 of the tile's forward and backward, so k views of crops cost k f^2 of one whole view. A slice
    is differentiable: the gradient lands on the cropped pixels. ``fraction >= 1`` returns ``x``.
    """
    if fraction >= 1:
        return x
    h, w = x.shape[-2:]
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    y0 = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
    x0 = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
    return x[..., y0 : y0 + ch, x0 : x0 + cw]


def constant_pad(x: torch.Tensor, width: int, value: float = 0.5) -> torch.Tensor:
    """The tile batch (B, C, h, w) inside a border of ``width`` pixels of ``value`` (B, C, h + 2 width,
    w + 2 width). lucid's and lucent's transform stacks start with such a pad (12 px of grey): the
    jitter and the zoom that follow then bring grey in at the edges, where a roll brings the opposite
    edge and a reflected warp a mirror of the image. ``width = 0`` returns ``x``."""
    if width <= 0:
        return x
    return torch.nn.functional.pad(x, (width, width, width, width), value=value)


class Transform:
    """A random, differentiable transformation of a tile batch (B, C, h, w): ``t(x, gen)``.

    Transforms compose as a list applied in order, as lucid/lucent's transform lists do; each
    draws from the generator it is given, so a seeded evaluation repeats exactly."""

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        raise NotImplementedError


class Jitter(Transform):
    """Roll by a random (dy, dx) in [-max_shift, max_shift] pixels (see :func:`jitter_roll`)."""

    def __init__(self, max_shift: int):
        self.max_shift = int(max_shift)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return jitter_roll(x, self.max_shift, gen)

    def __repr__(self) -> str:
        return f"Jitter({self.max_shift})"


class RandomAffine(Transform):
    """Zoom by up to ``max_scale`` and rotate by up to ``max_degrees`` (see :func:`random_affine`)."""

    def __init__(self, max_scale: float = 0.0, max_degrees: float = 0.0):
        self.max_scale, self.max_degrees = float(max_scale), float(max_degrees)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return random_affine(x, self.max_scale, self.max_degrees, gen)

    def __repr__(self) -> str:
        return f"RandomAffine(max_scale={self.max_scale}, max_degrees={self.max_degrees})"


class Pad(Transform):
    """A constant border of ``width`` pixels of ``value`` (see :func:`constant_pad`)."""

    def __init__(self, width: int, value: float = 0.5):
        self.width, self.value = int(width), float(value)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return constant_pad(x, self.width, self.value)

    def __repr__(self) -> str:
        return f"Pad({self.width}, value={self.value})"


class RandomCrop(Transform):
    """A random crop of ``fraction`` of each side (see :func:`random_crop`)."""

    def __init__(self, fraction: float):
        self.fraction = float(fraction)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return random_crop(x, self.fraction, gen)

    def __repr__(self) -> str:
        return f"RandomCrop({self.fraction})"


class Composite(Transform):
    """RGBA tiles (B, 4, h, w) -> RGB (B, 3, h, w) over random backgrounds, ``rgb * a + bg * (1 - a)``
    with ``a`` the alpha channel clamped to [0, 1]; 3-channel tiles pass unchanged.

    Each tile's background is, with equal chance, uniform noise in [0, 1] per pixel and channel
    or one flat colour uniform in [0, 1]^3, drawn from ``gen``. Optimized under random
    backgrounds, an image cannot use its background to excite the network: only its opaque part
    does, and a penalty on opacity (:class:`cnnvis.regularize.penalties.AlphaPenalty`) makes the
    rest transparent (Mordvintsev et al. 2018, "Differentiable Image Parameterizations",
    Distill, section "Generation of semi-transparent patterns").
    """

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if x.shape[1] != 4:
            return x
        b, _, h, w = x.shape
        noisy = torch.rand(b, 1, 1, 1, generator=gen) < 0.5
        flat = torch.rand(b, 3, 1, 1, generator=gen)
        noise = torch.rand(b, 3, h, w, generator=gen)
        bg = torch.where(noisy, noise, flat).to(x)
        a = x[:, 3:].clamp(0, 1)
        return x[:, :3] * a + bg * (1 - a)

    def __repr__(self) -> str:
        return "Composite()"


def apply_transforms(transforms, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Apply ``transforms`` (a sequence of :class:`Transform` or ``(x, gen) -> x`` callables) in order."""
    for t in transforms:
        x = t(x, gen)
    return x


def transforms_from_config(cfg) -> list[Transform]:
    """The transforms a :class:`cnnvis.config.RenderConfig` asks for: with ``cfg.alpha`` the composite
    over random backgrounds first, then a grey border of ``cfg.transform_pad`` pixels, jitter, zoom and
    rotation, and with ``cfg.transform_crop`` below 1 a random crop. A fixed-size network's capture
    resizes what a pad or a crop changed back to its input (:class:`cnnvis.models.capture.FeatureCapture`)."""
    composite = [Composite()] if cfg.alpha else []
    pad = [Pad(cfg.transform_pad)] if cfg.transform_pad > 0 else []
    crop = [RandomCrop(cfg.transform_crop)] if cfg.transform_crop < 1 else []
    return [*composite, *pad, Jitter(cfg.jitter), RandomAffine(cfg.transform_scale, cfg.transform_rotate), *crop]
