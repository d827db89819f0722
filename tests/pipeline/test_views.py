"""Several random transforms of each tile a step (``transform_views``): the mean of ordinary evaluations."""

from __future__ import annotations

import pytest
import torch

from cnnvis import Dream, Render, RenderConfig
from cnnvis.canvas.start import Start
from cnnvis.canvas.tiling import Window
from cnnvis.errors import InputError
from cnnvis.pipeline.gradient import CanvasGradient
from cnnvis.regularize.transforms import Jitter, RandomAffine


def _tiles(seed: int = 0) -> torch.Tensor:
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def _scores(model, views: int, seed: int, calls: int = 1) -> list[torch.Tensor]:
    """Per-tile scores of ``calls`` successive evaluations after seeding the transforms with ``seed``."""
    objective = Dream("conv3")
    with model.capture(objective.layers) as cap:
        g = CanvasGradient(model, objective, cap, 32, 8, 4, [Jitter(6), RandomAffine(0.2, 10)], torch.device("cpu"))
        g.set_size((32, 32), None)
        g.views = views
        g.tgen.manual_seed(seed)
        windows = [Window(0, 32, 0, 32)] * 2
        items = torch.tensor([0, 1])
        with torch.no_grad():
            return [g.score_tiles(_tiles(), windows, items) for _ in range(calls)]


def test_views_average_successive_draws_of_the_transforms(tiny_model):
    first, second = _scores(tiny_model, views=1, seed=3, calls=2)
    (both,) = _scores(tiny_model, views=2, seed=3)
    assert not torch.allclose(first, second)  # the two draws differ
    torch.testing.assert_close(both, (first + second) / 2)


def test_views_without_random_transforms_change_nothing(tiny_model):
    def run(views: int) -> torch.Tensor:
        init = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
        cfg = RenderConfig(final_size="48x48", steps=3, tile=32, jitter=0, shift=False, transform_views=views)
        return Render(tiny_model, Dream("conv3"), cfg, Start(init=init)).run()

    # 2 and 4 views: dividing a sum of identical floats by a power of two is exact (with 3, a rounding
    # flips the sign of near-zero gradients, and RMSProp's first step is lr * sign(g) / sqrt(1 - alpha))
    assert torch.equal(run(1), run(2)) and torch.equal(run(1), run(4))


def test_views_with_jitter_change_the_render(tiny_model):
    def run(views: int) -> torch.Tensor:
        init = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
        cfg = RenderConfig(final_size="48x48", steps=3, tile=32, jitter=4, transform_views=views)
        return Render(tiny_model, Dream("conv3"), cfg, Start(init=init)).run()

    assert not torch.equal(run(1), run(2))


def test_crops_reach_the_network_smaller_and_change_the_render(tiny_model):
    seen: list[tuple[int, int]] = []
    hook = tiny_model.module.register_forward_pre_hook(lambda m, a: seen.append(tuple(a[0].shape[-2:])))

    def run(crop: float) -> torch.Tensor:
        init = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
        cfg = RenderConfig(final_size="48x48", steps=3, tile=32, transform_crop=crop, transform_views=2)
        return Render(tiny_model, Dream("conv3"), cfg, Start(init=init)).run()

    try:
        whole, cropped = run(1.0), run(0.5)
    finally:
        hook.remove()
    assert (16, 16) in seen and (32, 32) in seen
    assert not torch.equal(whole, cropped) and torch.isfinite(cropped).all()


def test_a_crop_below_the_network_minimum_is_refused(tiny_model):
    cfg = RenderConfig(final_size="48x48", steps=1, tile=32, transform_crop=0.2)
    with pytest.raises(InputError, match=r"--transform-crop 0.2: a crop of 6 px .* use --transform-crop 0.25"):
        Render(tiny_model, Dream("conv3"), cfg, Start(size=(48, 48)))


def test_a_pad_reaches_the_network_larger(tiny_model):
    seen: list[tuple[int, int]] = []
    hook = tiny_model.module.register_forward_pre_hook(lambda m, a: seen.append(tuple(a[0].shape[-2:])))
    init = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    try:
        cfg = RenderConfig(final_size="48x48", steps=2, tile=32, transform_pad=4)
        out = Render(tiny_model, Dream("conv3"), cfg, Start(init=init)).run()
    finally:
        hook.remove()
    assert (40, 40) in seen and out.shape == (1, 3, 48, 48) and torch.isfinite(out).all()
