"""A compositional pattern-producing network (CPPN) as the parameterization.

Stanley (2007), "Compositional pattern producing networks"; used for feature visualization by
Mordvintsev et al. (2018), "Differentiable Image Parameterizations", Distill, section "CPPNs",
whose code is lucid's ``lucid.optvis.param.cppn``, followed here: every pixel's colour is a small
network of its coordinates,

    (x, y) -> 8 x [1x1 convolution to 24 channels, composite activation] -> 1x1 convolution -> sigmoid,

the composite activation being ``[atan(z) / 0.67, atan(z)**2 / 0.6]`` (both halves of unit RMS
for z ~ N(0, 1)), so a hidden layer passes 48 channels on. Weights start as lucid's: variance
scaling on the fan-in, biases N(0, 0.1), the output layer's weights zero (the start is a flat
grey, sigmoid of the biases). The network's weights are the parameters, one network per image.

The image is a function of continuous coordinates, so it exists at every resolution: the
shorter side spans (-sqrt(3), sqrt(3)) (unit standard deviation, as lucid's square grid), pixel
centres at half-pixel positions, the longer side extends at the same scale. :meth:`resized`
only changes the coordinate grid and keeps the weights and their optimizer state, and
:attr:`CPPNParam.resolution_free` lets the loop render sizes larger than a tile with one forward
pass instead of optimizing them. Large images are computed in row bands (:data:`BAND_VALUES`):
at 4096x4096 a hidden layer alone would be 48 x 16.7M floats, 3.2 GB.
"""

from __future__ import annotations

import math

import torch

from cnnvis.canvas.sizes import Size
from cnnvis.errors import InputError
from cnnvis.params.base import Param, ParamContext, register
from cnnvis.params.color import channels

HIDDEN = 24  # channels of every hidden 1x1 convolution (lucid's num_hidden_channels)
LAYERS = 8  # hidden layers (lucid's num_layers)
COORD_RANGE = math.sqrt(3.0)  # the shorter side spans (-r, r): unit standard deviation (lucid)
BIAS_STD = 0.1  # lucid's biases_initializer
# Values of one activation (N x 2 HIDDEN x rows x W) per band: 16 MB; the graph kept for one
# band's backward is about 2 LAYERS such tensors.
BAND_VALUES = 1 << 22


# lucid's _composite_activation is [atan(z) / 0.67, atan(z)**2 / 0.6]: 0.67 and 0.6 are the RMS
# of atan(z) and atan(z)**2 for z ~ N(0, 1).
ACTIVATION_RMS = (0.67, 0.6)


def coordinates(size: Size, rows: tuple[int, int], device) -> torch.Tensor:
    """(2, P) the (x, y) coordinates of the pixel centres of rows ``rows[0]..rows[1]-1`` of an
    image of ``size``, row-major; the shorter side spans (-COORD_RANGE, COORD_RANGE)."""
    h, w = size
    s = min(h, w)
    ys = (2 * torch.arange(rows[0], rows[1], dtype=torch.float32, device=device) + 1 - h) * (COORD_RANGE / s)
    xs = (2 * torch.arange(w, dtype=torch.float32, device=device) + 1 - w) * (COORD_RANGE / s)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)])


class CPPN:
    """N CPPNs with their own weights, evaluated together.

    Attributes:
        weights: per layer (N, out, in); biases: per layer (N, out). Layer 0 takes the 2
            coordinates, the others 2 * HIDDEN channels; the last one outputs C (3 or 4).
    """

    def __init__(self, weights: list[torch.Tensor], biases: list[torch.Tensor]):
        self.weights = [w.requires_grad_(True) for w in weights]
        self.biases = [b.requires_grad_(True) for b in biases]

    @classmethod
    def random(cls, n: int, out: int, gens, device) -> CPPN:
        """N networks of lucid's initialization, image i drawing from ``gens[i]`` (one generator
        for all: its draws in order)."""
        dims = [2] + [2 * HIDDEN] * LAYERS
        per_image = []
        for i in range(n):
            g = gens[i] if isinstance(gens, (list, tuple)) else gens
            ws, bs = [], []
            for k, fan_in in enumerate(dims):
                width = HIDDEN if k < LAYERS else out
                w = torch.randn(width, fan_in, generator=g) / math.sqrt(fan_in)
                ws.append(torch.zeros_like(w) if k == LAYERS else w)
                bs.append(torch.randn(width, generator=g) * BIAS_STD)
            per_image.append((ws, bs))
        weights = [torch.stack([p[0][k] for p in per_image]).to(device) for k in range(LAYERS + 1)]
        biases = [torch.stack([p[1][k] for p in per_image]).to(device) for k in range(LAYERS + 1)]
        return cls(weights, biases)

    def parameters(self) -> list[torch.Tensor]:
        return [t for pair in zip(self.weights, self.biases) for t in pair]

    def __call__(self, coords: torch.Tensor) -> torch.Tensor:
        """(2, P) coordinates -> (N, C, P) colours in (0, 1). The composite activation after every
        hidden layer is computed with its two halves kept apart and its constants
        (:data:`ACTIVATION_RMS`) folded into the next layer's (small) weights: the same function
        as lucid's concatenation, with fewer elementwise passes over the (N, 2 HIDDEN, P)
        activations."""
        n = self.weights[0].shape[0]
        z = torch.baddbmm(self.biases[0][:, :, None], self.weights[0], coords.expand(n, *coords.shape))
        for w, b in zip(self.weights[1:], self.biases[1:]):
            a = torch.atan(z)
            z = torch.baddbmm(b[:, :, None], w[:, :, :HIDDEN] / ACTIVATION_RMS[0], a)
            z = torch.baddbmm(z, w[:, :, HIDDEN:] / ACTIVATION_RMS[1], a * a)
        return torch.sigmoid(z)

    def band_rows(self, width: int) -> int:
        """Rows per band at image width ``width``: one activation of :data:`BAND_VALUES` values."""
        return max(1, BAND_VALUES // (self.weights[0].shape[0] * 2 * HIDDEN * width))

    def render(self, size: Size, rows: tuple[int, int]) -> torch.Tensor:
        """Rows ``rows`` of the images of ``size``: (N, C, rows[1] - rows[0], W)."""
        out = self(coordinates(size, rows, self.weights[0].device))
        return out.view(out.shape[0], out.shape[1], rows[1] - rows[0], size[1])


@register("cppn")
class CPPNParam(Param):
    """The weights of N CPPNs (:class:`CPPN`) as the parameters; their images at ``size``."""

    resolution_free = True
    # cnnvis prefer: the learning rate in the weights' own units (bench/params.py)
    tuned = {"prefer": dict(lr=0.005)}

    def __init__(self, ctx: ParamContext, size: Size, net: CPPN, optimizer: torch.optim.Optimizer | None = None):
        self.ctx, self.size, self.net = ctx, tuple(size), net
        self.optimizer = optimizer if optimizer is not None else ctx.optimizer(net.parameters())

    @classmethod
    def check(cls, cfg, start: bool) -> None:
        super().check(cfg, start)
        if start:
            raise InputError(
                "--param cppn draws its own pattern from random weights and cannot start from an image "
                "or a generator prior; start from noise (cnnvis dream --noise) and drop --prior dgn"
            )

    @classmethod
    def check_settings(cls, cfg) -> None:
        super().check_settings(cfg)
        if cfg.decorrelate:
            raise InputError(
                "--decorrelate applies to --param pixel or lowres (the Fourier image always is decorrelated); "
                "the CPPN draws RGB itself, drop --decorrelate"
            )

    @classmethod
    def create(cls, ctx: ParamContext, size: Size, start: torch.Tensor | None) -> CPPNParam:
        cls.check(ctx.cfg, start is not None)
        return cls(ctx, size, CPPN.random(ctx.batch, channels(ctx.cfg), ctx.item_gens or ctx.gen, ctx.device))

    def _bands(self) -> list[tuple[int, int]]:
        h = self.size[0]
        step = self.net.band_rows(self.size[1])
        return [(a, min(a + step, h)) for a in range(0, h, step)]

    def images(self) -> torch.Tensor:
        return self.net.render(self.size, (0, self.size[0]))

    def parameters(self) -> list[torch.Tensor]:
        return self.net.parameters()

    @torch.no_grad()
    def canvas(self) -> torch.Tensor:
        """The images (N, C, H, W), rendered band by band (one forward pass, no graph)."""
        bands = self._bands()
        out = None
        for a, b in bands:
            part = self.net.render(self.size, (a, b))
            if out is None:
                out = part.new_empty(part.shape[0], part.shape[1], *self.size)
            out[:, :, a:b] = part
        return out

    def _keeps_graph(self) -> bool:
        return len(self._bands()) == 1  # small: one band's graph is kept for apply_gradient

    def apply_gradient(self, grad: torch.Tensor) -> None:
        if self._keeps_graph():
            super().apply_gradient(grad)
            return
        # Large: each band's graph again, one at a time (the CPPN is pointwise, so the bands'
        # gradients add up to the whole image's).
        self.optimizer.zero_grad()
        for a, b in self._bands():
            self.net.render(self.size, (a, b)).backward(grad[:, :, a:b])

    def resized(self, size: Size) -> CPPNParam:
        """The same networks and optimizer state on the coordinate grid of ``size``."""
        return CPPNParam(self.ctx, size, self.net, self.optimizer)

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {}
        for k, (w, b) in enumerate(zip(self.net.weights, self.net.biases)):
            out[f"w{k}"], out[f"b{k}"] = w.detach(), b.detach()
        return out

    @classmethod
    def from_tensors(cls, ctx: ParamContext, size: Size, tensors: dict[str, torch.Tensor]) -> CPPNParam:
        n = LAYERS + 1
        return cls(
            ctx, size, CPPN([tensors[f"w{k}"].clone() for k in range(n)], [tensors[f"b{k}"].clone() for k in range(n)])
        )
