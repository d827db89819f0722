"""Laplacian-pyramid normalization of a gradient (Google's deepdream tutorial ``lap_normalize``;
neural-dream's ``-lap_scale``).

The gradient of a dream from noise is dominated by its highest frequencies, so plain steps grow
fine fuzz. Splitting it into a Laplacian pyramid and dividing every level by its own standard
deviation gives each scale an equal say: the dream gets structure at every scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Google's 5x5 binomial kernel: [1, 4, 6, 4, 1] outer itself, / 256
_K1 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
_K5 = (_K1[:, None] * _K1[None, :]) / 256.0


def _kernel(x: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    return _K5.to(x)[None, None].repeat(c, 1, 1, 1)


def _down(x: torch.Tensor) -> torch.Tensor:
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), _kernel(x), stride=2, groups=x.shape[1])


def _up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The transposed blur (Google's ``conv2d_transpose`` by the kernel x 4), cropped to ``size``."""
    y = F.conv_transpose2d(x, _kernel(x) * 4, stride=2, padding=2, groups=x.shape[1], output_padding=1)
    h, w = size
    if y.shape[-2] < h or y.shape[-1] < w:
        y = F.pad(y, (0, max(0, w - y.shape[-1]), 0, max(0, h - y.shape[-2])), mode="replicate")
    return y[..., :h, :w]


def lap_split(img: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid of ``img`` (1, C, H, W): the high-frequency bands, finest first, then the
    low-frequency residual (``levels`` entries at most; none smaller than 4 pixels)."""
    bands = []
    for _ in range(max(1, levels) - 1):
        if min(img.shape[-2:]) < 8:
            break
        lo = _down(img)
        bands.append(img - _up(lo, img.shape[-2:]))
        img = lo
    return bands + [img]


def lap_merge(bands: list[torch.Tensor]) -> torch.Tensor:
    """The inverse of :func:`lap_split` (exact: every band was defined as the difference it adds)."""
    img = bands[-1]
    for hi in reversed(bands[:-1]):
        img = _up(img, hi.shape[-2:]) + hi
    return img


def lap_normalize(grad: torch.Tensor, levels: int, eps: float = 1e-12) -> torch.Tensor:
    """``grad`` (N, C, H, W) with every Laplacian level of every image scaled to unit std.

    ``levels`` 0 or 1 returns each image divided by its std (one level)."""
    out = torch.empty_like(grad)
    for i in range(grad.shape[0]):
        out[i : i + 1] = lap_merge([b / b.std().clamp_min(eps) for b in lap_split(grad[i : i + 1], levels)])
    return out
