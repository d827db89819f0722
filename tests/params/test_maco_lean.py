"""MACO's bounded-memory draw and gradient (cnnvis.params.maco_lean) against autograd through MacoParam.images."""

from __future__ import annotations

import pytest
import torch

from cnnvis import RenderConfig
from cnnvis.params import ParamContext, base, maco_lean
from cnnvis.params.maco import ChannelAmplitudes, MacoParam


def _param(size, batch=2, seed=0):
    ctx = ParamContext(
        RenderConfig(param="maco"), torch.device("cpu"), torch.Generator().manual_seed(seed), (0.5,) * 3, batch=batch
    )
    return MacoParam.create(ctx, size, None)


def test_lean_draw_is_the_images_autograd_draws():
    p = _param((70, 52))  # more rows than a band, an even and an odd side
    maco_lean.ROWS, rows = 16, maco_lean.ROWS
    try:
        lean = maco_lean.draw(p.phase.detach(), p.amplitude, p.size)
    finally:
        maco_lean.ROWS = rows
    assert torch.allclose(lean, p.images().detach(), atol=2e-6)


@pytest.mark.parametrize("batch, width", [(2, 53), (1, 52)])
def test_lean_phase_gradient_is_autograds(batch, width):
    p = _param((70, width), batch=batch)
    grad = torch.randn(batch, 3, 70, width, generator=torch.Generator().manual_seed(1))
    (expected,) = torch.autograd.grad(p.images(), p.phase, grad)
    buffer = grad.clone()
    lean = maco_lean.phase_gradient(p.phase, p.amplitude, p.size, buffer)
    assert lean.shape == p.phase.shape
    assert float((lean - expected).abs().max()) < 1e-4 * float(expected.abs().max())
    # one image: the gradient lives in the loop's buffer (a canvas-sized tensor less)
    assert (lean.data_ptr() == buffer.data_ptr()) == (batch == 1) and lean.is_contiguous()  # L-BFGS flattens it


def test_large_canvases_step_through_the_lean_path(monkeypatch):
    small = _param((40, 40), batch=1, seed=3)
    grad = torch.randn(1, 3, 40, 40, generator=torch.Generator().manual_seed(2))
    canvas = small.draw()
    small.apply_gradient(grad.clone())
    monkeypatch.setattr(base, "KEEP_GRAPH_PIXELS", 40 * 40 - 1)  # the same canvas counts as large
    big = _param((40, 40), batch=1, seed=3)
    assert isinstance(big.amplitude, ChannelAmplitudes)  # only the small template is kept
    assert torch.allclose(big.amplitude.full(), small.amplitude, atol=1e-6)
    lean_canvas = big.draw()
    assert big._drawn is None  # no graph held through the tiles
    big.apply_gradient(grad.clone())
    assert torch.allclose(lean_canvas, canvas, atol=2e-6)
    assert torch.allclose(big.phase.grad, small.phase.grad, rtol=1e-4, atol=1e-6)
    resized = big.resized((30, 20))  # hands over through the lean canvas
    assert resized.canvas().shape == (1, 3, 30, 20)
