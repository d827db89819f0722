"""Low-resolution terms that the images of a batch share: lucid's ``SharedImage`` for aligned
interpolation (Olah et al. 2017, "Feature Visualization", Distill, "Interaction between
Neurons"; lucid's "Aligned Interpolation" notebook).

Each term is a small tensor (B, C, H / F, W / F) in the Fourier image's pre-colour, pre-sigmoid
space, upsampled bilinearly to (H, W) and, across the batch, either broadcast to every image
(B = 1) or interpolated linearly from the first image to the last (B = 2). The sum of the terms
is added to each image's own spectrum image, so neighbouring frames of an interpolation share
their layout and colours and morph smoothly instead of each finding its own arrangement.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from cnnvis.canvas.sizes import Size, resize
from cnnvis.params.lowres import low_size

# (downsampling factor F, images B) of each term: lucid's aligned-interpolation notebook
SHARED_TERMS: tuple[tuple[int, int], ...] = ((2, 1), (4, 1), (8, 1), (8, 2), (16, 1), (16, 2))
# lucid's lowres_tensor starts from normal noise of this standard deviation
SHARED_SD = 0.01


def batch_weights(n: int, b: int, like: torch.Tensor) -> torch.Tensor:
    """(n, b) weights that spread ``b`` values over ``n`` images: all ones for b = 1, else linear
    interpolation with the first value at image 0 and the last at image n - 1."""
    if b == 1:
        return torch.ones(n, 1, dtype=like.dtype, device=like.device)
    t = torch.linspace(0, b - 1, n, dtype=like.dtype, device=like.device)[:, None]
    return (1 - (t - torch.arange(b, dtype=like.dtype, device=like.device)[None, :]).abs()).clamp_min(0)


class SharedTerms:
    """The shared terms of a batch of ``n`` images (n, C, H, W).

    Args:
        n: the number of images.
        channels: C (3, or 4 with alpha).
        size: (H, W) of the images, pixels.
        gen: the run's seeded generator (the terms are one draw for the whole batch).
        terms: (factor, images) of each term, :data:`SHARED_TERMS` by default.
        tensors: the terms' tensors to resume from (their shapes fix ``terms``).
        weight: the terms' sum is multiplied by it. Under Adam (whose steps do not depend on the
            gradient's scale) it is the shared terms' step size against the images' own: 1 is
            lucid's, and made the first and last images of an interpolation alike (issue 24).
    """

    def __init__(
        self,
        n: int,
        channels: int,
        size: Size,
        gen: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        terms: Sequence[tuple[int, int]] = SHARED_TERMS,
        tensors: Sequence[torch.Tensor] | None = None,
        weight: float = 1.0,
    ):
        self.n, self.size, self.weight = n, tuple(size), weight
        if tensors is None:
            tensors = [torch.randn(b, channels, *low_size(size, f), generator=gen) * SHARED_SD for f, b in terms]
        self.tensors = [t.to(device).requires_grad_(True) for t in tensors]

    def __call__(self) -> torch.Tensor:
        """Their sum (n, C, H, W), differentiable with respect to :attr:`tensors`."""
        out = None
        for t in self.tensors:
            up = F.interpolate(t, size=self.size, mode="bilinear", align_corners=False)
            x = torch.einsum("nb,bchw->nchw", batch_weights(self.n, t.shape[0], t), up)
            out = x if out is None else out + x
        return out * self.weight if self.weight != 1 else out

    def resized(self, size: Size) -> SharedTerms:
        """The same terms for images of ``size``: each tensor resized in proportion."""
        ratio = (size[0] / self.size[0], size[1] / self.size[1])
        with torch.no_grad():
            tensors = [
                resize(t.detach(), (max(1, round(t.shape[2] * ratio[0])), max(1, round(t.shape[3] * ratio[1]))))
                for t in self.tensors
            ]
        return SharedTerms(
            self.n, tensors[0].shape[1], size, device=tensors[0].device, tensors=tensors, weight=self.weight
        )
