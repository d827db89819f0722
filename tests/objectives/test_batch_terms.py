"""Diversity and alignment: batch-level terms split over the tiles of each window."""

from __future__ import annotations

import pytest
import torch

from cnnvis.canvas.start import Start
from cnnvis.canvas.tiling import Window
from cnnvis.config import RenderConfig
from cnnvis.objectives.activation import Channel
from cnnvis.objectives.base import Capture
from cnnvis.objectives.batch import Alignment, Diversity, gram_cosines
from cnnvis.pipeline.loop import Render


def _cap(a, windows=None):
    b = a.shape[0]
    return Capture(
        torch.zeros(b, 3, 8, 8), {"L": a}, windows or [Window(0, 8, 0, 8)] * b, (8, 8), items=torch.arange(b), batch=b
    )


def test_identical_images_have_diversity_minus_one():
    a = torch.rand(1, 4, 3, 3).repeat(3, 1, 1, 1)
    s = Diversity("L")(_cap(a))
    assert float(s.sum()) == pytest.approx(-2.0, abs=1e-5)  # -(1/N) sum_i sum_{j != i} 1 = -(N - 1)


def test_different_styles_are_more_diverse_and_windows_are_separate():
    a = torch.zeros(2, 4, 3, 3)
    a[0, 0], a[1, 1] = 1.0, 1.0  # Gram matrices with disjoint support: cosine 0
    assert float(Diversity("L")(_cap(a)).sum()) == pytest.approx(0.0, abs=1e-6)
    # two tiles of different windows are never compared
    apart = _cap(torch.rand(2, 4, 3, 3), [Window(0, 8, 0, 8), Window(8, 16, 0, 8)])
    assert torch.equal(Diversity("L")(apart), torch.zeros(2))
    assert gram_cosines(torch.rand(3, 4, 2, 2)).shape == (3, 3)


def test_alignment_is_zero_for_equal_neighbours_and_negative_otherwise():
    same = torch.rand(1, 4, 3, 3).repeat(3, 1, 1, 1)
    assert float(Alignment("L")(_cap(same)).abs().sum()) == 0.0
    a = torch.rand(3, 4, 3, 3)
    s = Alignment("L")(_cap(a))
    want = -((a[0] - a[1]).pow(2).mean() / 2 + (a[1] - a[2]).pow(2).mean() / 2 + (a[0] - a[2]).pow(2).mean() / 4)
    assert float(s.sum()) == pytest.approx(float(want), rel=1e-5)


def _gram_distance(model, images):
    from cnnvis.models.capture import FeatureCapture

    with FeatureCapture(model.module, ["conv3"]) as cap, torch.no_grad():
        sims = gram_cosines(cap(model.normalize(images))["conv3"])
    n = images.shape[0]
    return float((1 - sims).sum() / (n * (n - 1)))


def test_a_diversity_term_makes_a_batch_more_diverse(tiny_model):
    cfg = RenderConfig(steps=12, tile=32, optimizer="adam", lr=0.05, batch_size=4, shift=False)
    seeds = Start(size=(32, 32), batch=4, item_seeds=[1, 2, 3, 4])  # four noise starts
    plain = Render(tiny_model, Channel("conv3", 4), cfg, seeds).run()
    diverse = Render(tiny_model, Channel("conv3", 4) + 50.0 * Diversity("conv3"), cfg, seeds).run()
    assert _gram_distance(tiny_model, diverse) > _gram_distance(tiny_model, plain) + 1e-3
