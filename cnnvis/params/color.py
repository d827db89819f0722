"""Colour helpers shared by the parameterizations: lucid's decorrelated colour space and the
alpha channel of RGBA images.

Decorrelated colour space (Olah et al. 2017, "Feature Visualization", Distill; lucid's
``_linear_decorrelate_color``): an image is stored as ``y`` with ``rgb = COLOR @ y`` per pixel,
``COLOR`` the square root of ImageNet's colour covariance. A gradient step on ``y`` is then
whitened across channels: the correlated directions (luminance) and the rare ones (chroma)
move alike. Here the map is linear and centred on the model's mean colour,
``rgb = mean + COLOR @ y``, so pixel units, clamps and icnn's pixel operations keep their
meaning in RGB and the inverse is exact.

Alpha (Mordvintsev et al. 2018, "Differentiable Image Parameterizations", Distill, section
"Generation of semi-transparent patterns"; lucid's ``image(..., alpha=True)``): an RGBA image
(N, 4, H, W) has its opacity in channel 3, in [0, 1]. A start without an alpha channel starts at
:data:`START_ALPHA`, lucid's sigmoid(0).
"""

from __future__ import annotations

import torch

# Square root of the colour correlation of ImageNet pixels (lucid), scaled so that its largest
# column has unit norm.
COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOR = COLOR_SQRT / COLOR_SQRT.norm(dim=0).max()
START_ALPHA = 0.5  # opacity of a start that has no alpha channel (lucid's sigmoid(0))


def channels(cfg) -> int:
    """Channels of the images a run optimizes: 4 (RGBA) with ``cfg.alpha``, else 3."""
    return 4 if cfg.alpha else 3


def mix(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``matrix`` (3, 3) applied to the colour of every pixel of ``x`` (N, 3, H, W)."""
    return torch.einsum("ij,bjhw->bihw", matrix.to(x), x)


def to_rgb(y: torch.Tensor, mean) -> torch.Tensor:
    """Decorrelated ``y`` (N, 3 or 4, H, W) -> RGB(A) ``mean + COLOR @ y``; alpha passes through.
    Differentiable."""
    rgb = mix(COLOR, y[:, :3]) + torch.tensor(mean, dtype=y.dtype, device=y.device).view(1, 3, 1, 1)
    return rgb if y.shape[1] == 3 else torch.cat([rgb, y[:, 3:]], 1)


def from_rgb(x: torch.Tensor, mean) -> torch.Tensor:
    """The inverse of :func:`to_rgb`: RGB(A) ``x`` (N, 3 or 4, H, W) -> decorrelated."""
    y = mix(torch.linalg.inv(COLOR), x[:, :3] - torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1))
    return y if x.shape[1] == 3 else torch.cat([y, x[:, 3:]], 1)


def with_alpha(x: torch.Tensor, n: int) -> torch.Tensor:
    """``x`` (N, 3 or 4, H, W) with ``n`` channels: an alpha channel of :data:`START_ALPHA` added
    to an RGB image when ``n`` is 4 (an RGBA image keeps its own), or the alpha dropped when 3."""
    if x.shape[1] == n:
        return x
    if n == 3:
        return x[:, :3].contiguous()
    return torch.cat([x, torch.full_like(x[:, :1], START_ALPHA)], 1)
