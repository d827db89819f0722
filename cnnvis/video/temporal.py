"""The temporal term of a video frame's render: stay with the previous result where it can be carried.

Ruder, Dosovitskiy and Brox 2016, "Artistic style transfer for videos", Sec. 3.2, eq. (7): the
short-term temporal loss ``sum_i c_i (x_i - w_i)^2``, with ``w`` the previous frame's result
warped onto this frame by the optical flow and ``c`` the reliability mask of the consistency
check (0 where a pixel was hidden or lies on a motion boundary, so new content is free).

A dream needs it more than a style transfer: it does not converge but amplifies whatever the
image holds, so a start that differs from the previous one by a fraction of a grey level (camera
noise, an encoding, a sub-pixel warp) dreams into different fine patterns (on efficientnet-lite0,
input noise of 0.1/255 changed a 40-step dream by 10/255 on average, three quarters of the dream
itself). The term holds carried pixels near the previous result, so the dream changes from frame
to frame only where the scene does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from cnnvis.canvas.sizes import resize

WHOLE_CANVAS = 1 << 30  # a halo taller than any canvas: the penalty sees the canvas in one strip


@dataclass(eq=False)
class TemporalPenalty:
    """``weight * sum(mask * (x - target) ** 2)`` over the pixels and colours of the canvas (a
    regularizer: minimized with the objective; its gradient per pixel is ``2 weight mask (x - target)``,
    next to an objective gradient normalized to a mean magnitude of 1).

    Args:
        weight: the temporal weight; 0 disables.
        target: (H, W, 3) float32 in [0, 1], the previous result warped onto this frame.
        mask: (H, W) float32 in [0, 1], the reliability of the warp.

    Target and mask are resized to the canvas at every size of the render (octaves).
    """

    weight: float
    target: np.ndarray
    mask: np.ndarray
    halo: int = WHOLE_CANVAS  # regularizers go strip by strip; this one must see whole rows to line up with its target
    _cache: dict = field(default_factory=dict, repr=False)

    def _at(self, hw: tuple[int, int], device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
        key = (tuple(hw), str(device), dtype)
        if key not in self._cache:
            self._cache.clear()  # one size at a time: the canvas grows, it never returns
            t = torch.from_numpy(np.ascontiguousarray(self.target, np.float32)).permute(2, 0, 1)[None]
            m = torch.from_numpy(np.ascontiguousarray(self.mask, np.float32))[None, None]
            self._cache[key] = (resize(t, hw).to(device, dtype), resize(m, hw).clamp(0, 1).to(device, dtype))
        return self._cache[key]

    def loss(self, x: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        """Of the colours of ``x`` (N, 3 or 4, H, W), the whole canvas -> scalar."""
        target, mask = self._at(x.shape[-2:], x.device, x.dtype)
        return self.weight * (mask * (x[:, :3] - target).square()).sum()
