"""The temporal loss: its gradient, its resizing with the canvas, and what it does to a render."""

from __future__ import annotations

import numpy as np
import torch
from test_flow import textured

from cnnvis.canvas.start import Start
from cnnvis.config import RenderConfig
from cnnvis.objectives.activation import Dream
from cnnvis.pipeline.loop import Render
from cnnvis.regularize.penalties import regularizer_gradient
from cnnvis.regularize.terms import Terms
from cnnvis.video.temporal import TemporalPenalty


def test_gradient_is_the_masked_difference_over_the_whole_canvas():
    """Regularizers run in strips of rows; this one must line up with its target on every row."""
    h, w = 600, 700  # taller than one strip of 3 x 700 values (499 rows)
    target, mask = textured(h, w), np.zeros((h, w), np.float32)
    mask[:, : w // 2] = 1
    x = torch.rand(1, 3, h, w)
    out = torch.zeros_like(x)
    pen = TemporalPenalty(2.5, target, mask)
    loss = regularizer_gradient(x, [pen], out)
    t, m = torch.from_numpy(target).permute(2, 0, 1)[None], torch.from_numpy(mask)[None, None]
    assert torch.allclose(out, 2 * 2.5 * m * (x - t), atol=1e-5)
    assert abs(loss - float(2.5 * (m * (x - t) ** 2).sum())) < 1e-2 * loss


def test_target_and_mask_follow_the_canvas_size():
    pen = TemporalPenalty(1.0, np.full((40, 60, 3), 0.25, np.float32), np.ones((40, 60), np.float32))
    small = torch.full((1, 3, 20, 30), 0.75)
    assert abs(float(pen.loss(small)) - 20 * 30 * 3 * 0.25) < 1e-3
    rgba = torch.full((1, 4, 40, 60), 0.25)
    assert float(pen.loss(rgba)) == 0.0  # the alpha channel is not pulled


def test_a_render_holds_the_masked_half_and_dreams_the_other(tiny_model):
    start = textured(32, 48, seed=3)
    mask = np.zeros((32, 48), np.float32)
    mask[:, :24] = 1
    cfg = RenderConfig(steps=8, tile=32, octaves=1, tv_weight=0.0)
    x = torch.from_numpy(start).permute(2, 0, 1)[None]
    held = (
        Render(
            tiny_model, Dream("conv3"), cfg, Start(init=x), terms=Terms(penalties=[TemporalPenalty(50.0, start, mask)])
        )
        .run()[0]
        .permute(1, 2, 0)
        .numpy()
    )
    free = Render(tiny_model, Dream("conv3"), cfg, Start(init=x)).run()[0].permute(1, 2, 0).numpy()
    change_held, change_free = np.abs(held - start), np.abs(free - start)
    assert change_held[:, :24].mean() < 0.3 * change_free[:, :24].mean()
    assert change_held[:, 30:].mean() > 0.5 * change_free[:, 30:].mean()
