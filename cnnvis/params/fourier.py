"""Image parameterizations: what the optimizer actually changes.

``pixel``: the canvas itself (cnn-vis, icnn). The pipeline steps it in row bands.

``fft``: a Fourier spectrum in a decorrelated colour space, mapped to RGB through a sigmoid
(Olah et al. 2017, "Feature Visualization", Distill; lucid's ``fft_image`` +
``to_valid_rgb``). Each frequency is scaled by ``1 / f**decay_power``, so a gradient step
changes low frequencies as easily as high ones: plain pixel gradients are dominated by high
frequencies and give noisy images. The colour decorrelation (the square root of ImageNet's
colour covariance) does the same across channels. The sigmoid keeps every pixel in (0, 1).
"""

from __future__ import annotations

import torch

from cnnvis.canvas.sizes import Size, resize
from cnnvis.params.base import Param, ParamContext, register
from cnnvis.params.color import COLOR as _COLOR
from cnnvis.params.color import channels, with_alpha
from cnnvis.params.pixel import batched
from cnnvis.params.shared import SharedTerms

# lucid divides the spectrum image by 4 so that a unit-variance spectrum gives a mild image
_MAGIC = 4.0
# Canvas-sized buffers beyond the canvas: the spectrum plus the irfft / colour / sigmoid
# intermediates of the graph it draws through (about four canvases).
FOURIER_BUFFERS = 5


def _freq_scale(h: int, w: int, decay_power: float) -> torch.Tensor:
    """(h, w // 2 + 1) spectrum weights ``1 / max(f, 1 / max(h, w)) ** decay_power``.

    lucid also multiplies by ``sqrt(h w)``, but only because TensorFlow's ``irfft2d`` is
    unnormalized; ``torch.fft.irfft2(norm="ortho")`` already is, and the extra factor made
    every step ``sqrt(h w)`` (224x at 224 px) too large (found by bench/prefer.py).
    """
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    f = torch.sqrt(fy * fy + fx * fx).clamp_min(1.0 / max(h, w))
    return f.pow(-decay_power)


class FourierImage:
    """N images (N, C, H, W) in (0, 1) parameterized by a scaled, colour-decorrelated spectrum.

    With ``channels=4`` the image is RGBA: the spectrum has a 4th channel whose sigmoid is the
    alpha channel, not mixed with the colours (lucid's ``image(..., alpha=True)``).

    Args:
        size: (H, W) pixels.
        init: (N, C, H, W) in [0, 1] to start from, or None for a random spectrum of std ``sd``
            (``batch`` images).
        decay_power: 1 = lucid's default; larger favours lower frequencies.
        gen: the seeded generator for the random start, or one generator per image.
        channels: C, 3 (RGB) or 4 (RGBA).
        shared: low-resolution terms the images share (:mod:`cnnvis.params.shared`), added to
            each image before the colour map and the sigmoid; None: every image is its own.
    """

    def __init__(
        self,
        size: Size,
        init: torch.Tensor | None = None,
        decay_power: float = 1.0,
        sd: float = 0.01,
        gen: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        batch: int = 1,
        channels: int = 3,
        shared: SharedTerms | None = None,
    ):
        h, w = size
        self.size = (h, w)
        self.shared = shared
        self.scale = _freq_scale(h, w, decay_power).to(device)
        self.decay_power = decay_power
        if init is None and isinstance(gen, (list, tuple)):  # one generator per image
            spec = torch.cat([torch.randn(1, channels, h, w // 2 + 1, 2, generator=g) for g in gen]) * sd
        elif init is None:
            spec = torch.randn(batch, channels, h, w // 2 + 1, 2, generator=gen) * sd
        else:
            spec = self._spectrum_of(init.to(device, torch.float32))
        self.spectrum = spec.to(device).requires_grad_(True)

    def parameters(self) -> list[torch.Tensor]:
        return [self.spectrum] + (self.shared.tensors if self.shared else [])

    def image(self) -> torch.Tensor:
        """The images (N, C, H, W) in (0, 1), differentiable with respect to the spectrum (and
        the shared terms)."""
        spec = torch.view_as_complex(self.spectrum) * self.scale
        x = torch.fft.irfft2(spec, s=self.size, norm="ortho") / _MAGIC
        if self.shared is not None:
            x = x + self.shared()
        if x.shape[1] == 3:
            x = torch.einsum("ij,bjhw->bihw", _COLOR.to(x), x)
        else:  # RGBA: the colours are decorrelated, the alpha channel is not
            x = torch.cat([torch.einsum("ij,bjhw->bihw", _COLOR.to(x), x[:, :3]), x[:, 3:]], 1)
        return torch.sigmoid(x)

    def _spectrum_of(self, img: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`image` (pixels clamped into (0, 1) first; the shared terms, if
        any, are kept and the spectrum takes the rest)."""
        y = torch.logit(img.clamp(1e-4, 1 - 1e-4))
        x = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(_COLOR).to(y), y[:, :3])
        if y.shape[1] > 3:
            x = torch.cat([x, y[:, 3:]], 1)
        if self.shared is not None:
            with torch.no_grad():
                x = x - self.shared()
        spec = torch.fft.rfft2(x * _MAGIC, norm="ortho") / self.scale
        return torch.view_as_real(spec).contiguous()

    def resized(self, size: Size) -> FourierImage:
        """A new parameterization at ``size`` whose image is this one's, resized."""
        with torch.no_grad():
            img = resize(self.image(), size)
        shared = self.shared.resized(size) if self.shared is not None else None
        return FourierImage(
            size, img, self.decay_power, device=self.spectrum.device, channels=img.shape[1], shared=shared
        )


@register("fft")
class FourierParam(Param):
    """The decorrelated Fourier image as a parameterization. Between sizes the image is resized
    and its spectrum taken again; the optimizer, whose state has the old spectrum's shape,
    starts afresh."""

    accepts_shared = True  # lucid's SharedImage: terms added before the colour map and the sigmoid

    def __init__(self, ctx: ParamContext, image: FourierImage):
        self.ctx, self.image = ctx, image
        self.size = image.size
        self.optimizer = ctx.optimizer(image.parameters())

    @classmethod
    def canvas_buffers(cls, cfg) -> float:
        return FOURIER_BUFFERS

    @classmethod
    def create(cls, ctx: ParamContext, size: Size, start: torch.Tensor | None) -> FourierParam:
        n = channels(ctx.cfg)
        init = None if start is None else batched(with_alpha(resize(start.to(ctx.device), size), n), ctx.batch)
        shared = None
        if ctx.cfg.shared:
            shared = SharedTerms(ctx.batch, n, size, gen=ctx.gen, device=ctx.device, weight=ctx.cfg.shared_weight)
        return cls(
            ctx,
            FourierImage(
                size,
                init,
                ctx.cfg.fft_decay,
                gen=ctx.item_gens or ctx.gen,
                device=ctx.device,
                batch=ctx.batch,
                channels=n,
                shared=shared,
            ),
        )

    def images(self) -> torch.Tensor:
        return self.image.image()

    def parameters(self) -> list[torch.Tensor]:
        return self.image.parameters()

    def resized(self, size: Size) -> FourierParam:
        return FourierParam(self.ctx, self.image.resized(size))

    def tensors(self) -> dict[str, torch.Tensor]:
        shared = self.image.shared.tensors if self.image.shared else []
        return {"spectrum": self.image.spectrum.detach(), **{f"shared{k}": t.detach() for k, t in enumerate(shared)}}

    @classmethod
    def from_tensors(cls, ctx: ParamContext, size: Size, tensors: dict[str, torch.Tensor]) -> FourierParam:
        spectrum = tensors["spectrum"]
        terms = [tensors[f"shared{k}"].clone() for k in range(len(tensors)) if f"shared{k}" in tensors]
        shared = (
            SharedTerms(
                spectrum.shape[0],
                spectrum.shape[1],
                size,
                device=ctx.device,
                tensors=terms,
                weight=ctx.cfg.shared_weight,
            )
            if terms
            else None
        )
        img = FourierImage(
            size,
            None,
            ctx.cfg.fft_decay,
            gen=torch.Generator(),
            device=ctx.device,
            batch=spectrum.shape[0],
            channels=spectrum.shape[1],
            shared=shared,
        )
        img.spectrum = tensors["spectrum"].clone().requires_grad_(True)
        return cls(ctx, img)
