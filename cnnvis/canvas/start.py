"""What a run starts from and what it covers: the start image or a base size, the image mask, and
how many images are rendered together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from cnnvis.canvas.sizes import Size
from cnnvis.errors import InputError


@dataclass(frozen=True)
class Start:
    """The start of a :class:`cnnvis.pipeline.loop.Render`.

    Attributes:
        init: (1 or N, 3, H, W) RGB in [0, 1] to start from (the size plan is relative to it), or
            ``None`` for a noise start (sizes relative to ``size``, else the model's input).
        size: (H, W) base size, in pixels, of a noise start.
        mask: (1, 1, H, W) in [0, 1] over the base size: only masked pixels change (cnnpref's
            image mask); resized with the canvas.
        batch: N, the number of images rendered together (their tiles share forward passes);
            objectives address one image with ``.on(i)``. An ``init`` of N images sets it.
        item_seeds: N seeds: image i's noise start draws from its own generator, so it does not
            depend on the other images of the batch (atlases).
        keep_best: the N images are N starts of one picture: the render returns only the one the
            objective scored highest at the last evaluation (an inversion's restarts).
    """

    init: torch.Tensor | None = None
    size: Size | None = None
    mask: torch.Tensor | None = None
    batch: int = 1
    item_seeds: Sequence[int] | None = None
    keep_best: bool = False

    @property
    def images(self) -> int:
        """N: ``batch``, or the number of start images when there are more."""
        n = max(int(self.batch), 1 if self.init is None else self.init.shape[0])
        if self.item_seeds is not None and len(self.item_seeds) != n:
            raise InputError(f"{len(self.item_seeds)} item seeds for a batch of {n} images; give one seed per image")
        return n

    def base_size(self, model_input: int) -> Size:
        """(H, W) the size plan is relative to: the start image's, ``size``, or the model's input."""
        if self.init is not None:
            return tuple(self.init.shape[-2:])
        return tuple(self.size or (model_input, model_input))
