"""What the render loop reports after every step, to a callback (the library never prints)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from cnnvis.canvas.sizes import Size


@dataclass(frozen=True)
class Progress:
    """One finished step. ``step`` counts from 1 over the whole run; ``size_step`` within a size.

    ``score`` is the objective summed over all tiles of all images; ``reg_loss`` the
    regularizers' loss; ``lr`` the learning rate used (in the parameterization's units).
    """

    step: int
    total: int
    size_index: int
    num_sizes: int
    size: Size
    size_step: int
    steps_per_size: int
    score: float
    reg_loss: float
    lr: float
    render: Any  # the cnnvis.pipeline.loop.Render that made the step

    def image(self) -> torch.Tensor:
        """The current canvas, (N, C, H, W) float (C = 4, RGBA, with ``cfg.alpha``), a detached copy."""
        return self.render.image()
