"""MACO: only the phase of a Fourier image is optimized; its amplitude is the mean spectrum of
natural photos (Fel et al., NeurIPS 2023, "Unlocking Feature Visualization for Deeper Networks
with MAgnitude Constrained Optimization"; horama's ``maco``).

A Fourier image whose amplitudes are free drifts to the dense high-frequency textures that
feature visualizations of deep, residual and transformer networks are known for. Holding the
amplitudes at those of natural photos keeps the image's energy where photos have theirs, and the
optimizer only decides where structure goes (the phase).

The image of phase ``phi`` (N, 3, H, W // 2 + 1) and amplitude template ``A`` (3, H, W // 2 + 1):
``y = irfft2(A * exp(i phi))``, standardized per image (zero mean, unit variance), then
``rgb = sigmoid(COLOR @ y)`` in lucid's decorrelated colour space (:mod:`cnnvis.params.color`).
horama also standardizes the phase itself; here the phase is used as it is, so a start image's
phase (the angle of its spectrum) is reached exactly, and sizes hand over through the image.

The template ships as ``cnnvis/data/maco_spectrum.npy`` (scripts/maco_spectrum.py, from the
bundled photos outside the validation set) and is resized to any canvas; ``--maco-spectrum FILE``
gives another, (3, h, h // 2 + 1) like that one.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F

from cnnvis.canvas.sizes import Size, resize
from cnnvis.errors import InputError
from cnnvis.params import maco_lean
from cnnvis.params.base import Param, ParamContext, keeps_graph, register
from cnnvis.params.color import COLOR, mix
from cnnvis.params.pixel import batched

# The phase, the amplitude and the irfft / standardize / colour / sigmoid intermediates of the
# graph they draw through: about as many canvases as the Fourier image holds (above KEEP_GRAPH_PIXELS
# cnnvis.params.maco_lean draws with fewer).
MACO_BUFFERS = 5
SHIPPED_SPECTRUM = "maco_spectrum.npy"


@functools.lru_cache(maxsize=4)  # read once per run, not at every size (callers never change it in place)
def read_spectrum(path: str | None) -> torch.Tensor:
    """The amplitude template (3, h, w) as float32: ``path``'s, or the shipped one. A file is
    read as data (``np.load`` without pickles) and its shape checked."""
    if path is None:
        with resources.as_file(resources.files("cnnvis") / "data" / SHIPPED_SPECTRUM) as p:
            return torch.from_numpy(np.load(p, allow_pickle=False).astype(np.float32))
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError(
            f"--maco-spectrum '{path}' is not a .npy array ({type(e).__name__}); "
            "write one with scripts/maco_spectrum.py"
        ) from None
    if a.ndim != 3 or a.shape[0] != 3 or a.shape[2] != a.shape[1] // 2 + 1 or not np.isfinite(a).all():
        raise InputError(
            f"--maco-spectrum '{path}' holds shape {a.shape}; it needs (3, H, H // 2 + 1) finite amplitudes, "
            "as scripts/maco_spectrum.py writes"
        )
    return torch.from_numpy(a.astype(np.float32)).abs()


def spectrum_at(template: torch.Tensor, size: Size) -> torch.Tensor:
    """The template (3, h, w) resized to the rfft layout of an (H, W) image, (3, H, W // 2 + 1).

    The rows are shifted so that the zero frequency sits in the middle while resizing (rfft2
    puts the negative frequencies at the bottom), so low frequencies stay low at every size."""
    h, w = size
    shifted = torch.fft.fftshift(template, dim=-2)[None]
    out = F.interpolate(shifted, size=(h, w // 2 + 1), mode="bilinear", align_corners=False, antialias=True)[0]
    return torch.fft.ifftshift(out, dim=-2).clamp_min(0)


def _standardize(y: torch.Tensor) -> torch.Tensor:
    """Each image of ``y`` (N, C, H, W) at zero mean and unit variance."""
    mean = y.mean(dim=(1, 2, 3), keepdim=True)
    return (y - mean) / (y.std(dim=(1, 2, 3), keepdim=True) + 1e-4)


def phase_of(images: torch.Tensor) -> torch.Tensor:
    """The phase (N, 3, H, W // 2 + 1) of the decorrelated logits of ``images`` (N, 3, H, W) in [0, 1]."""
    y = mix(torch.linalg.inv(COLOR), torch.logit(images[:, :3].clamp(1e-3, 1 - 1e-3)))
    return torch.angle(torch.fft.rfft2(y, norm="ortho"))


class ChannelAmplitudes:
    """The template resized to a canvas one colour channel at a time, when asked: a large canvas keeps only the small
    template (the whole (3, H, W // 2 + 1) amplitude of a 4096x4096 canvas is 100 MB). ``[c]`` is channel ``c``'s
    (H, W // 2 + 1), as a tensor's would be."""

    def __init__(self, template: torch.Tensor, size: Size):
        self.template, self.size = template, tuple(size)

    def __getitem__(self, c: int) -> torch.Tensor:
        return spectrum_at(self.template[c : c + 1], self.size)[0]

    def to(self, device) -> ChannelAmplitudes:
        return ChannelAmplitudes(self.template.to(device), self.size)

    def full(self) -> torch.Tensor:
        return torch.stack([self[c] for c in range(3)])


@register("maco")
class MacoParam(Param):
    """The MACO image as a parameterization: the phase is optimized, the amplitude is fixed.
    Between sizes the image is resized and its phase taken again (the optimizer starts afresh)."""

    # Chosen on bench/quality.py's tuning classes: prefer's mild transforms (jitter 2, zoom 3 %,
    # rotation 3 degrees) left one class in six unrecognised by Lite1/Lite2; these stronger ones
    # (the middle of three tried) reach top-1 6/6 and keep the natural slope (bench/RESULTS.md).
    tuned = {"prefer": dict(lr=0.1, jitter=8, transform_scale=0.2, transform_rotate=10.0)}

    def __init__(self, ctx: ParamContext, size: Size, phase: torch.Tensor, amplitude: torch.Tensor | ChannelAmplitudes):
        self.ctx, self.size = ctx, tuple(size)
        self.phase = phase.to(ctx.device).requires_grad_(True)
        self.amplitude = amplitude.to(ctx.device)
        self.optimizer = ctx.optimizer([self.phase])
        self._lean_canvas: tuple[int, torch.Tensor] | None = None  # (phase version, canvas) above KEEP_GRAPH_PIXELS

    @classmethod
    def check_settings(cls, cfg) -> None:
        super().check_settings(cfg)
        if cfg.alpha:
            raise InputError(
                "--param maco draws RGB images; for a transparency use --alpha-from-grad, or --param fft with --alpha"
            )

    @classmethod
    def canvas_buffers(cls, cfg) -> float:
        return MACO_BUFFERS

    @classmethod
    def _amplitude(cls, ctx: ParamContext, size: Size) -> torch.Tensor | ChannelAmplitudes:
        template = read_spectrum(ctx.cfg.maco_spectrum)
        return spectrum_at(template, size) if keeps_graph(size) else ChannelAmplitudes(template, size)

    @classmethod
    def create(cls, ctx: ParamContext, size: Size, start: torch.Tensor | None) -> MacoParam:
        h, w = size
        shape = (3, h, w // 2 + 1)
        if start is not None:
            phase = phase_of(batched(resize(start.to(ctx.device), size)[:, :3], ctx.batch))
        elif ctx.item_gens:  # one generator per image: image i does not depend on its batch
            phase = torch.cat([torch.randn(1, *shape, generator=g) for g in ctx.item_gens])
        else:
            phase = torch.randn(ctx.batch, *shape, generator=ctx.gen)
        return cls(ctx, size, phase, cls._amplitude(ctx, size))

    def images(self) -> torch.Tensor:
        amplitude = self.amplitude.full() if isinstance(self.amplitude, ChannelAmplitudes) else self.amplitude
        spec = torch.polar(amplitude.expand_as(self.phase), self.phase)
        y = _standardize(torch.fft.irfft2(spec, s=self.size, norm="ortho"))
        return torch.sigmoid(mix(COLOR, y))

    def canvas(self) -> torch.Tensor:
        if self._keeps_graph():
            return super().canvas()
        # The loop asks for the canvas after a step and draws it again at the next: it is drawn once per phase
        # version (an optimizer step bumps it), into the same tensor each time, so no second canvas is allocated
        # (the loop keeps no older canvas: it copies what it hands out).
        version, (drawn, canvas) = self.phase._version, self._lean_canvas or (None, None)
        if drawn != version:
            canvas = maco_lean.draw(self.phase.detach(), self.amplitude, self.size, out=canvas)
            self._lean_canvas = (version, canvas)
        return canvas

    def apply_gradient(self, grad: torch.Tensor) -> None:
        if self._keeps_graph():
            super().apply_gradient(grad)
            return
        self.optimizer.zero_grad()
        self.phase.grad = maco_lean.phase_gradient(self.phase, self.amplitude, self.size, grad)

    def clear_gradient(self) -> None:
        self.phase.grad = None  # a canvas-sized tensor less between steps

    def parameters(self) -> list[torch.Tensor]:
        return [self.phase]

    def resized(self, size: Size) -> MacoParam:
        with torch.no_grad():
            img = resize(self.canvas(), size)
        return MacoParam(self.ctx, size, phase_of(img), self._amplitude(self.ctx, size))

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"phase": self.phase.detach()}

    @classmethod
    def from_tensors(cls, ctx: ParamContext, size: Size, tensors: dict[str, torch.Tensor]) -> MacoParam:
        return cls(ctx, size, tensors["phase"].clone(), cls._amplitude(ctx, size))
