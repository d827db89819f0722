"""Tile placement, blend weights that sum to one, and tiled gradients equal to untiled ones."""

from __future__ import annotations

import itertools

import pytest
import torch

from cnnvis import Dream, FeatureCapture, Render, RenderConfig
from cnnvis.canvas.start import Start
from cnnvis.canvas.tiling import Window, axis_starts, axis_weights, layout, tiled_gradient
from cnnvis.objectives.base import Capture

COMBOS = [
    (length, tile, overlap, offset)
    for length, tile, overlap in itertools.product(
        [1, 5, 31, 32, 33, 64, 100, 157], [1, 4, 16, 32, 50], [0, 1, 3, 8, 15]
    )
    if overlap < tile
    for offset in sorted({0, 1, max(0, tile - overlap - 1)})
    if offset < max(1, tile - overlap)
]


@pytest.mark.parametrize("length,tile,overlap,offset", COMBOS)
def test_axis_starts_cover_and_stay_inside(length, tile, overlap, offset):
    starts = axis_starts(length, tile, overlap, offset)
    t = min(tile, length)
    assert starts, "no tiles"
    assert all(0 <= s <= length - t for s in starts)
    assert starts == sorted(set(starts)), "starts must be increasing and unique"
    covered = torch.zeros(length, dtype=torch.int64)
    for s in starts:
        covered[s : s + t] += 1
    assert bool((covered >= 1).all()), f"uncovered positions {torch.nonzero(covered == 0).flatten().tolist()}"
    # Neighbours share at least the requested overlap (edge tiles slide inwards, so can share more).
    for a, b in zip(starts, starts[1:]):
        assert a + t - b >= min(overlap, t - 1)


@pytest.mark.parametrize("length,tile,overlap,offset", COMBOS[::3])
def test_axis_weights_sum_to_one(length, tile, overlap, offset, device):
    starts = axis_starts(length, tile, overlap, offset)
    t = min(tile, length)
    weights = axis_weights(length, starts, tile, overlap, device)
    assert len(weights) == len(starts)
    acc = torch.zeros(length, device=device)
    for s, w in zip(starts, weights):
        assert w.shape == (t,) and w.device.type == device.type
        assert bool((w > 0).all())
        acc[s : s + t] += w
    assert torch.allclose(acc, torch.ones(length, device=device), atol=1e-6)


@pytest.mark.parametrize(
    "h,w,tile,overlap,offset",
    [
        (40, 70, 16, 4, (0, 0)),
        (40, 70, 16, 4, (3, 11)),
        (33, 17, 8, 0, (2, 5)),
        (20, 20, 64, 8, (0, 0)),
        (57, 91, 32, 8, (7, 23)),
    ],
)
def test_layout_weights_sum_to_one_on_canvas(h, w, tile, overlap, offset, device):
    lay = layout(h, w, tile, overlap, offset, device=device)
    acc = torch.zeros(1, 1, h, w, device=device)
    cover = torch.zeros(1, 1, h, w, device=device)
    th, tw = min(tile, h), min(tile, w)
    assert len(lay.windows) == len(lay.weights)
    for i, win in enumerate(lay.windows):
        wt = lay.weight_map(i)
        assert (win.y1 - win.y0, win.x1 - win.x0) == (th, tw)
        assert 0 <= win.y0 and win.y1 <= h and 0 <= win.x0 and win.x1 <= w
        assert wt.shape == (1, 1, th, tw) and wt.device.type == device.type
        acc[:, :, win.y0 : win.y1, win.x0 : win.x1] += wt
        cover[:, :, win.y0 : win.y1, win.x0 : win.x1] += 1
    assert torch.allclose(acc, torch.ones_like(acc), atol=1e-6)
    if tile < min(h, w):
        assert len(lay.windows) > 1 and bool((cover > 1).any())


def _tiny_score_fn(model, layer="conv3"):
    obj = Dream(layer)

    def score_fn(x, windows, items=None):
        with FeatureCapture(model.module, [layer]) as cap:
            feats = cap(model.normalize(x))
        return obj(Capture(x, feats, windows, (0, 0)))

    return score_fn


def test_single_tile_gradient_equals_full_gradient(tiny_model, device):
    torch.manual_seed(1)
    canvas = torch.rand(1, 3, 40, 52).to(device)
    score_fn = _tiny_score_fn(tiny_model.to(device))
    lay = layout(40, 52, tile=64, overlap=16, offset=(5, 9), device=device)
    assert lay.windows == [Window(0, 40, 0, 52)]
    out = torch.zeros_like(canvas)
    total = tiled_gradient(canvas, lay, score_fn, batch_size=4, out=out)

    x = canvas.clone().requires_grad_(True)
    s = score_fn(x, [Window(0, 40, 0, 52)]).sum()
    (g_full,) = torch.autograd.grad(s, x)
    assert g_full.abs().sum() > 0
    assert torch.allclose(out, g_full, rtol=1e-5, atol=1e-7)
    assert total == pytest.approx(float(s.detach()), rel=1e-5)


def test_tiled_gradient_adds_into_out(tiny_model, device):
    canvas = torch.rand(1, 3, 24, 24).to(device)
    lay = layout(24, 24, 32, 8, device=device)
    score_fn = _tiny_score_fn(tiny_model.to(device))
    first = torch.zeros_like(canvas)
    tiled_gradient(canvas, lay, score_fn, 1, first)
    twice = first.clone()
    tiled_gradient(canvas, lay, score_fn, 1, twice)
    assert torch.allclose(twice, 2 * first)


@pytest.mark.parametrize("offset,batch_size", [((0, 0), 1), ((3, 5), 3), ((6, 1), 16)])
def test_pixelwise_score_tiled_gradient_equals_full(offset, batch_size, device):
    torch.manual_seed(2)
    h, w = 45, 61
    canvas = torch.randn(1, 3, h, w).to(device)
    lay = layout(h, w, tile=16, overlap=6, offset=offset, device=device)
    assert len(lay.windows) > 4

    def score_fn(x, windows, items=None):
        return x.pow(2).flatten(1).sum(1)

    out = torch.zeros_like(canvas)
    tiled_gradient(canvas, lay, score_fn, batch_size, out)
    # d/dx sum(x^2) = 2x; the blended tile gradients must reproduce it exactly.
    assert torch.allclose(out, 2 * canvas, atol=1e-5)


def test_position_dependent_pixelwise_score(device):
    """A score that depends on where the tile lies (via its window) still blends to the full gradient."""
    h, w = 30, 50
    torch.manual_seed(3)
    canvas = torch.randn(1, 3, h, w).to(device)
    coef = torch.linspace(-1, 2, w, device=device).view(1, 1, 1, w).expand(1, 3, h, w)
    lay = layout(h, w, tile=12, overlap=4, offset=(2, 7), device=device)

    def score_fn(x, windows, items=None):
        c = torch.cat([coef[:, :, win.y0 : win.y1, win.x0 : win.x1] for win in windows])
        return (c * x.pow(3)).flatten(1).sum(1)

    out = torch.zeros_like(canvas)
    tiled_gradient(canvas, lay, score_fn, 5, out)
    assert torch.allclose(out, 3 * coef * canvas.pow(2), atol=1e-4)


def test_unblended_tiles_give_the_exact_gradient_of_the_returned_score(device):
    """What a line search needs: the gradient is the derivative of the score it is given with it
    (the tiles overlap, so the score counts the overlaps twice and blending would not match it)."""
    torch.manual_seed(4)
    h, w = 30, 50
    canvas = torch.rand(1, 3, h, w).to(device)
    lay = layout(h, w, tile=20, overlap=8, offset=(3, 5), device=device)

    def score_fn(x, windows, items=None):
        return torch.tanh(x * 3).flatten(1).sum(1)

    def score_at(c):
        return tiled_gradient(c, lay, score_fn, 4, torch.zeros_like(c), blend=False)

    out = torch.zeros_like(canvas)
    score_at(canvas)
    tiled_gradient(canvas, lay, score_fn, 4, out, blend=False)
    direction = torch.randn_like(canvas)
    eps = 1e-3
    numeric = (score_at(canvas + eps * direction) - score_at(canvas - eps * direction)) / (2 * eps)
    assert abs(float((out * direction).sum()) - numeric) < 1e-2 * abs(numeric)
    blended = torch.zeros_like(canvas)
    tiled_gradient(canvas, lay, score_fn, 4, blended)
    assert abs(float((blended * direction).sum()) - numeric) > 0.1 * abs(numeric)  # the default is not


def _boundary_ratio(diff_per_col: torch.Tensor, boundary_cols: list[int]) -> float:
    return float(diff_per_col[boundary_cols].mean() / diff_per_col.mean())


def test_no_seams_at_tile_borders(tiny_model, device):
    """Dream on a 160x160 canvas with 32-px tiles: nothing special at the fixed-grid tile borders."""
    side, tile = 160, 32
    yy, xx = torch.meshgrid(torch.linspace(0, 1, side), torch.linspace(0, 1, side), indexing="ij")
    init = torch.stack([0.3 + 0.4 * xx, 0.3 + 0.4 * yy, 0.5 + 0.1 * torch.sin(6 * xx * yy)])[None].to(device)
    cfg = RenderConfig(steps=6, tile=tile, lr=0.02, shift=True, tv_weight=0.0, seed=0)
    out = Render(tiny_model, Dream("conv3"), cfg, Start(init=init), device=device).run()
    change = out.cpu() - init.cpu()
    assert change.abs().mean() > 0.01
    overlap = tile // 4
    starts = axis_starts(side, tile, overlap, 0)
    borders = sorted({s - 1 for s in starts[1:]} | {s + tile - 1 for s in starts[:-1]})
    dx = (change[..., :, 1:] - change[..., :, :-1]).abs().mean(dim=(0, 1, 2))  # (W-1,)
    dy = (change[..., 1:, :] - change[..., :-1, :]).abs().mean(dim=(0, 1, 3))  # (H-1,)
    assert _boundary_ratio(dx, borders) < 1.5
    assert _boundary_ratio(dy, borders) < 1.5


def test_single_tile_gradient_equals_full_gradient_on_embedded_model(lite0, device):
    """Exactness on real weights: one 224-px tile over a 224x224 canvas is the untiled gradient."""
    from cnnvis.models.capture import FeatureCapture
    from cnnvis.objectives.activation import Dream

    torch.manual_seed(4)
    canvas = torch.rand(1, 3, 224, 224).to(device)
    obj = Dream("blocks.4.2")
    lite0.to(device)  # session-wide: moved back below for the tests that follow
    try:
        with FeatureCapture(lite0.module, obj.layers) as cap:

            def score_fn(x, windows, items=None):
                return obj(Capture(x, cap(lite0.normalize(x)), windows, (224, 224)))

            lay = layout(224, 224, tile=224, overlap=56, offset=(17, 40), device=device)
            out = torch.zeros_like(canvas)
            tiled_gradient(canvas, lay, score_fn, batch_size=4, out=out)
            x = canvas.clone().requires_grad_(True)
            (g_full,) = torch.autograd.grad(score_fn(x, lay.windows).sum(), x)
    finally:
        lite0.to("cpu")
    assert g_full.abs().mean() > 0
    assert torch.allclose(out, g_full, rtol=1e-4, atol=1e-6 * float(g_full.abs().max()))
