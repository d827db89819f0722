"""One evaluation of the loss gradient on the whole canvas: the objective tile by tile, then the
regularizers strip by strip, then the image mask.

The loss minimized is ``-score + regularizers``. For every batch of tiles (all N images' tiles
together): transforms -> normalize -> model (hooks on the objective's layers only, the forward
pass cut short) -> :class:`cnnvis.objectives.base.Capture` -> objective -> per-tile scores ->
d(score)/d(tiles), blended into one canvas gradient whose tile weights sum to one per pixel.
Reference images (inversion) ride in the same batch as the tiles, cropped to the same windows,
so they get the same transforms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from cnnvis.canvas.sizes import Size, resize
from cnnvis.canvas.tiling import Window, layout, tiled_gradient
from cnnvis.models.capture import FeatureCapture
from cnnvis.objectives.base import Capture, Objective
from cnnvis.pipeline.attribution import accumulate
from cnnvis.regularize.laplacian import lap_normalize
from cnnvis.regularize.penalties import regularizer_gradient
from cnnvis.regularize.transforms import apply_transforms


class CanvasGradient:
    """d(loss)/d(canvas) of a canvas (N, C, H, W), C = 3 or 4 (RGBA), for one objective, model and tiling.

    Args:
        model: the :class:`cnnvis.models.registry.LoadedModel`.
        objective: what to maximize; its ``references`` (1 or N, 3, H, W) are compared window by window.
        capture: the hooks on the objective's layers (entered by the caller).
        tile, overlap: tile side and overlap, pixels.
        batch_size: tiles per forward pass.
        transforms: applied to every batch of tiles (see :mod:`cnnvis.regularize.transforms`).
        device: where tiles are computed.
        lap_scale: Laplacian-pyramid levels over which the objective's gradient is normalized
            (:mod:`cnnvis.regularize.laplacian`), 0 for none.
    """

    def __init__(
        self,
        model,
        objective: Objective,
        capture: FeatureCapture,
        tile: int,
        overlap: int,
        batch_size: int,
        transforms: Sequence,
        device: torch.device,
        lap_scale: int = 0,
    ):
        self.model, self.objective, self.capture = model, objective, capture
        self.lap_scale = lap_scale
        self.tile, self.overlap, self.batch_size = tile, overlap, batch_size
        self.transforms, self.device = list(transforms), device
        self.references = {id(r): r.to(device, torch.float32) for r in objective.references}
        self.tgen = torch.Generator()
        self.at_size: dict[int, torch.Tensor] = {}  # the references resized to the current size
        self.mask: torch.Tensor | None = None
        self.batch = 1
        self.canvas_size: Size = (0, 0)
        self.work_size: Size = (0, 0)  # where the tiles lie: the canvas, or it enlarged to one fixed-size tile
        self.attribution: torch.Tensor | None = None  # accumulated |objective gradient| (N, 1, H, W)
        self.track_attribution = False
        self.exact = False  # the exact gradient of the score (tiles unblended): for a line search
        self.item_scores: torch.Tensor | None = None  # (N,) float64: each image's objective score, last call
        self.views = 1  # independent random transforms each tile is scored under, averaged

    def set_size(self, size: Size, mask: torch.Tensor | None) -> None:
        """Resize the references and the image mask (1, 1, H', W') to a new canvas size."""
        self.canvas_size = size
        self.work_size = working_size(size, self.tile) if getattr(self.model, "fixed_size", False) else size
        self.at_size = {k: resize(r, self.work_size) for k, r in self.references.items()}
        self.mask = None if mask is None else resize(mask, size).clamp_(0, 1)

    def release(self) -> None:
        self.at_size, self.mask = {}, None

    def __call__(
        self,
        canvas: torch.Tensor,
        grad: torch.Tensor,
        regularizers: Sequence,
        p_ref: torch.Tensor | None,
        offset: tuple[int, int],
        seed: int,
        normalize: bool | float,
    ) -> tuple[float, float]:
        """Fill ``grad`` with d(loss)/d(canvas); return (score, regularizer loss).

        ``normalize``: True divides the objective's gradient by its mean |g| (a new factor every
        call); a number multiplies the objective (score and gradient) by that fixed factor.
        """
        self.batch = canvas.shape[0]
        self.item_scores = torch.zeros(self.batch, dtype=torch.float64)
        self.tgen.manual_seed(seed)  # the same transforms however often L-BFGS re-evaluates
        grad.zero_()
        if self.work_size in ((0, 0), tuple(canvas.shape[-2:])):
            score = self._tiled(canvas.detach(), grad, offset)
        else:
            score = self._enlarged(canvas, grad, offset)
        if self.track_attribution:
            self.attribution = accumulate(self.attribution, grad)
        grad.neg_()  # the optimizer minimizes -score + regularizers
        if self.lap_scale:
            grad.copy_(lap_normalize(grad, self.lap_scale))
        if normalize is True:
            # Google's deepdream and icnn divide the step by mean |g|: the objective's scale then
            # no longer depends on the layer or model, and regularizer weights keep a meaning.
            # Each image by its own mean, so an image of a batch steps as it would alone.
            for g in grad.split(1):
                g.div_(float(torch.linalg.vector_norm(g, ord=1)) / g.numel() + 1e-12)
        elif normalize is not False:
            grad.mul_(normalize)
            score *= normalize
        reg_loss = regularizer_gradient(canvas.detach(), regularizers, grad, p_ref)
        if self.mask is not None:
            grad.mul_(self.mask)
        return score, reg_loss

    def _tiled(self, canvas: torch.Tensor, grad: torch.Tensor, offset: tuple[int, int]) -> float:
        h, w = canvas.shape[-2:]
        tiles = layout(h, w, self.tile, self.overlap, offset, device=self.device)
        return tiled_gradient(
            canvas, tiles, self.score_tiles, self.batch_size, grad, blend=not self.exact, item_scores=self.item_scores
        )

    def _enlarged(self, canvas: torch.Tensor, grad: torch.Tensor, offset: tuple[int, int]) -> float:
        """The tiled gradient of a canvas smaller than a fixed-size model's tile: the tiles lie on
        the canvas enlarged (bilinear) to :attr:`work_size`, and the gradient flows back through
        the enlargement to the canvas."""
        src = canvas.detach().requires_grad_(True)
        with torch.enable_grad():
            big = F.interpolate(src, size=self.work_size, mode="bilinear", align_corners=False)
        big_grad = torch.zeros_like(big)
        score = self._tiled(big.detach(), big_grad, offset)
        (g,) = torch.autograd.grad(big, src, big_grad)
        grad.copy_(g)
        return score

    def score_tiles(self, tiles: torch.Tensor, windows: Sequence[Window], items: torch.Tensor) -> torch.Tensor:
        """Per-tile scores (B,) of a batch of tiles (B, C, h, w) from images ``items`` (B,): the
        mean over :attr:`views` independent draws of the random transforms, run as one forward
        pass, each view scored by the objective on its own (an ordinary evaluation, so every
        objective keeps its meaning). RGBA tiles (C = 4) become RGB in the transforms
        (:class:`cnnvis.regularize.transforms.Composite`)."""
        x = self._with_references(tiles, windows, items)
        n = x.shape[0]
        drawn = [apply_transforms(self.transforms, x, self.tgen) for _ in range(self.views)]
        feats = self.capture(self.model.normalize(torch.cat(drawn) if len(drawn) > 1 else drawn[0]))
        prefix = self.capture.prefix
        scores = None
        for v in range(self.views):
            view = slice(v * n, (v + 1) * n)
            s = self._score_view(
                tiles, windows, items, {k: t[view] for k, t in feats.items()}, {k: t[view] for k, t in prefix.items()}
            )
            scores = s if scores is None else scores + s
        return scores / self.views if self.views > 1 else scores

    def _with_references(self, tiles: torch.Tensor, windows: Sequence[Window], items: torch.Tensor) -> torch.Tensor:
        """The tiles (B, C, h, w) followed by each reference image cropped to the same windows (B each)."""
        parts = [tiles]
        for ref in self.at_size.values():
            # one reference image for all, or one per batch image
            idx = items if ref.shape[0] > 1 else torch.zeros_like(items)
            parts += [ref[int(i) : int(i) + 1, :, w.y0 : w.y1, w.x0 : w.x1] for i, w in zip(idx, windows)]
        if len(parts) > 1 and tiles.shape[1] == 4:
            # RGBA tiles: the references (RGB) ride along opaque, so the composite keeps them as they are
            parts[1:] = [torch.cat([p, torch.ones_like(p[:, :1])], 1) for p in parts[1:]]
        return torch.cat(parts) if len(parts) > 1 else tiles

    def _score_view(self, tiles, windows, items, feats: dict, prefix: dict) -> torch.Tensor:
        """Per-tile scores (B,) from one view's features of the tiles and their references."""
        b = tiles.shape[0]
        targets = None
        if self.at_size:
            targets = {
                key: {k: v[b * (j + 1) : b * (j + 2)].detach() for k, v in feats.items()}
                for j, key in enumerate(self.at_size)
            }
            feats = {k: v[:b] for k, v in feats.items()}
            prefix = {k: v[:b] for k, v in prefix.items()}
        cap = Capture(tiles, feats, windows, self.work_size, targets, items, self.batch, prefix)
        return self.objective(cap)


def working_size(size: Size, tile: int) -> Size:
    """Where the tiles of a fixed-size model lie on a canvas of ``size`` (H, W): the canvas, or,
    when it is smaller than one ``tile`` on a side, the canvas enlarged (aspect kept) until its
    short side is one tile."""
    h, w = size
    if min(h, w) >= tile:
        return size
    k = tile / min(h, w)
    return max(tile, math.ceil(h * k - 1e-6)), max(tile, math.ceil(w * k - 1e-6))
