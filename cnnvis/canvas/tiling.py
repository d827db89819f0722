"""Overlapping tiles over a canvas, with blend weights that sum to one at every pixel.

The tile grid is a product of 1-D placements along y and x. Every step the grid is shifted
by a random offset, so tile borders never sit in the same place twice (no seams). Each tile
carries a separable trapezoid weight ``w_y(i) * w_x(j)``; dividing by the per-axis sums makes
the weights of all tiles covering a pixel sum to exactly one, with no canvas-sized buffer.
Where one tile covers the whole canvas its weight is 1 everywhere, so the tiled gradient is
the untiled gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Window:
    """A tile's rectangle on the canvas, half-open: rows y0..y1-1, columns x0..x1-1 (pixels)."""

    y0: int
    y1: int
    x0: int
    x1: int


def axis_starts(length: int, tile: int, overlap: int, offset: int = 0) -> list[int]:
    """Start positions of tiles of size ``tile`` covering ``[0, length)``.

    Tiles sit at stride ``tile - overlap`` from ``-offset``; starts are clamped into
    ``[0, length - tile]`` (edge tiles slide inwards rather than shrink) and deduplicated.

    Args:
        length: canvas side, pixels.
        tile: tile side, pixels; clamped to ``length``.
        overlap: pixels shared by neighbouring tiles, ``0 <= overlap < tile``.
        offset: grid shift, ``0 <= offset < stride``.
    """
    tile = min(tile, length)
    if tile == length:
        return [0]
    stride = max(1, tile - min(overlap, tile - 1))
    starts, s = [], -offset
    while True:
        c = min(max(s, 0), length - tile)
        if not starts or c != starts[-1]:
            starts.append(c)
        if c + tile >= length:
            return starts
        s += stride


def axis_weights(length: int, starts: Sequence[int], tile: int, ramp: int, device=None) -> list[torch.Tensor]:
    """Per-tile 1-D blend weights along one axis, normalized so they sum to 1 at every position.

    Each tile's raw weight is a trapezoid rising over ``ramp`` pixels at both ends, strictly
    positive (so the canvas edge, covered by one tile, still gets that tile's full gradient).

    Returns:
        one tensor of shape (tile,) per start.
    """
    tile = min(tile, length)
    p = torch.arange(tile, dtype=torch.float32, device=device)
    r = float(max(1, ramp))
    raw = torch.minimum(torch.ones_like(p), torch.minimum((p + 0.5) / r, (tile - p - 0.5) / r))
    total = torch.zeros(length, dtype=torch.float32, device=device)
    for s in starts:
        total[s : s + tile] += raw
    return [raw / total[s : s + tile] for s in starts]


@dataclass(frozen=True)
class TileLayout:
    """One step's tiles and their normalized weights.

    Attributes:
        windows: all tiles, row-major.
        weights: per tile its normalized 1-D weights ``(w_y (h,), w_x (w,))``; the tile's
            weight map is their outer product, and over all tiles the maps sum to 1 per pixel.
            Only the 1-D factors are stored: at 4096x4096 the 2-D maps would take 125 MB.
    """

    windows: list[Window]
    weights: list[tuple[torch.Tensor, torch.Tensor]]

    def weight_map(self, i: int) -> torch.Tensor:
        """Tile ``i``'s (1, 1, h, w) blend weights."""
        wy, wx = self.weights[i]
        return (wy[:, None] * wx[None, :])[None, None]


def layout(
    height: int, width: int, tile: int, overlap: int, offset: tuple[int, int] = (0, 0), device=None
) -> TileLayout:
    """Tiles of ``tile`` x ``tile`` pixels (clamped to the canvas) covering (height, width)."""
    th, tw = min(tile, height), min(tile, width)
    ys = axis_starts(height, th, overlap, offset[0])
    xs = axis_starts(width, tw, overlap, offset[1])
    wy = axis_weights(height, ys, th, overlap, device)
    wx = axis_weights(width, xs, tw, overlap, device)
    windows, weights = [], []
    for y, a in zip(ys, wy):
        for x, b in zip(xs, wx):
            windows.append(Window(y, y + th, x, x + tw))
            weights.append((a, b))
    return TileLayout(windows, weights)


def tiled_gradient(
    canvas: torch.Tensor,
    tiles: TileLayout,
    score_fn: Callable[[torch.Tensor, Sequence[Window], torch.Tensor], torch.Tensor],
    batch_size: int,
    out: torch.Tensor,
    blend: bool = True,
    item_scores: torch.Tensor | None = None,
) -> float:
    """Accumulate d(score)/d(canvas) tile by tile into ``out``; return the summed score.

    Args:
        canvas: (N, 3, H, W) images, no grad needed; every image is cut into the same tiles.
        tiles: the step's layout.
        score_fn: maps a tile batch (B, 3, h, w), its windows and its image indices (B,) int64
            to per-tile scores (B,).
        batch_size: tiles per forward/backward pass. Tiles are ordered window by window and,
            within a window, image by image, so a batch holds the same window of several images.
        out: (N, 3, H, W) buffer that receives ``sum_t weight_t * grad_t`` (added, not zeroed).
        blend: weight each tile's gradient by its blend weights (no seams under first-order steps).
            False gives the exact gradient of the returned score, ``sum_t grad_t``, which a line
            search needs: with blending the gradient is not the score's, and near a solution L-BFGS's
            strong-Wolfe search spent up to 13 evaluations a step instead of 2 (issue 24).
        item_scores: (N,) float64, or None: receives each image's summed tile scores (added).

    Only one batch of tiles has activations alive at a time, so memory is bounded by a batch.
    """
    n = canvas.shape[0]
    order = [(k, i) for k in range(len(tiles.windows)) for i in range(n)]
    total = 0.0
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        wins = [tiles.windows[k] for k, _ in chunk]
        items = torch.tensor([i for _, i in chunk], dtype=torch.long, device=canvas.device)
        x = (
            torch.cat([canvas[i : i + 1, :, w.y0 : w.y1, w.x0 : w.x1] for (_, i), w in zip(chunk, wins)])
            .detach()
            .requires_grad_(True)
        )
        scores = score_fn(x, wins, items)
        (g,) = torch.autograd.grad(scores.sum(), x)
        total += float(scores.detach().sum())
        if item_scores is not None:
            item_scores.index_add_(0, items.to(item_scores.device), scores.detach().to(item_scores))
        for j, ((k, i), w) in enumerate(zip(chunk, wins)):
            region = out[i : i + 1, :, w.y0 : w.y1, w.x0 : w.x1]
            region.addcmul_(g[j : j + 1], tiles.weight_map(k)) if blend else region.add_(g[j : j + 1])
    return total
