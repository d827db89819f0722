"""The batch dimension: N images rendered together, each as it would be alone."""

from __future__ import annotations

import pytest
import torch

from cnnvis.canvas.start import Start
from cnnvis.config import RenderConfig
from cnnvis.errors import InputError
from cnnvis.objectives.activation import Channel, Dream
from cnnvis.objectives.base import Sum
from cnnvis.pipeline.loop import Render
from cnnvis.regularize.penalties import TV
from cnnvis.regularize.terms import Terms
from cnnvis.regularize.transforms import Jitter

CHANNELS = (1, 5, 9)
SEEDS = (11, 22, 33)


def _channels(items=CHANNELS):
    return Sum([(1.0, Channel("conv3", c).on(i)) for i, c in enumerate(items)])


@pytest.mark.parametrize("param,optimizer", [("pixel", "rmsprop"), ("pixel", "adam"), ("fft", "adam"), ("pixel", "gd")])
def test_each_image_of_a_batch_renders_as_it_would_alone(tiny_model, param, optimizer, device):
    """Channel c_i on image i of a batch of 3 equals the single render of c_i from the same
    seed: tiles, normalization, optimizer state and pixel ops are per image."""
    cfg = RenderConfig(
        steps=4,
        param=param,
        optimizer=optimizer,
        lr=0.05,
        tile=16,
        overlap=4,
        batch_size=5,
        octaves=2,
        final_size="40x40",
    )
    batch = Render(tiny_model, _channels(), cfg, Start(size=(32, 32), batch=3, item_seeds=SEEDS), device=device).run()
    assert batch.shape == (3, 3, 40, 40)
    for i, (c, s) in enumerate(zip(CHANNELS, SEEDS)):
        alone = Render(tiny_model, Channel("conv3", c), cfg, Start(size=(32, 32), item_seeds=[s]), device=device).run()
        assert torch.allclose(batch[i : i + 1], alone, atol=1e-5), (i, float((batch[i : i + 1] - alone).abs().max()))
    # and the images differ from each other: each maximized its own channel
    assert float((batch[0] - batch[1]).abs().mean()) > 1e-3


def test_a_batch_of_one_is_todays_render(tiny_model):
    cfg = RenderConfig(steps=3, tile=16, overlap=4)
    one = Render(tiny_model, Channel("conv3", 2), cfg, Start(size=(32, 32))).run()
    also = Render(tiny_model, Channel("conv3", 2).on(0), cfg, Start(size=(32, 32), batch=1)).run()
    assert torch.equal(one, also)


def test_tiles_of_all_images_share_forward_passes(tiny_model):
    """One forward pass holds tiles of several images (window-major order)."""
    seen = []
    obj = _channels()
    score = obj.score

    def spy(cap):
        seen.append(cap.item_index().tolist())
        return score(cap)

    obj.score = spy
    Render(
        tiny_model, obj, RenderConfig(steps=1, tile=32, batch_size=3, shift=False), Start(size=(32, 32), batch=3)
    ).run()
    assert seen == [[0, 1, 2]]


def test_one_start_image_is_shared_by_the_batch(tiny_model):
    init = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    r = Render(tiny_model, _channels(), RenderConfig(steps=1, tile=32), Start(init=init, batch=3))
    out = r.run()
    assert out.shape == (3, 3, 32, 32)
    assert not torch.equal(out[0], out[1])  # same start, different objectives


def test_item_seeds_must_match_the_batch(tiny_model):
    with pytest.raises(InputError, match="2 item seeds for a batch of 3"):
        Render(tiny_model, _channels(), RenderConfig(steps=1), Start(batch=3, item_seeds=[1, 2]))


def test_transforms_and_regularizers_passed_as_objects(tiny_model, device):
    """A Python user composes transforms and regularizers as objects (lucent's lists)."""
    cfg = RenderConfig(steps=3, tile=32, tv_weight=0.0)
    plain = Render(
        tiny_model,
        Dream("conv3"),
        cfg,
        Start(size=(32, 32)),
        device=device,
        terms=Terms(transforms=[], regularizers=[]),
    ).run()
    smooth = Render(
        tiny_model,
        Dream("conv3"),
        cfg,
        Start(size=(32, 32)),
        device=device,
        terms=Terms(transforms=[], regularizers=[TV(50.0)]),
    ).run()
    jitter = Render(
        tiny_model,
        Dream("conv3"),
        cfg,
        Start(size=(32, 32)),
        device=device,
        terms=Terms(transforms=[Jitter(4)], regularizers=[]),
    ).run()
    tv = TV(1.0)

    def rough(x):
        return float(tv.loss(x))

    assert rough(smooth) < rough(plain)
    assert not torch.equal(plain, jitter)
    # the defaults come from the config: the same as passing them explicitly
    from cnnvis.regularize.transforms import transforms_from_config

    default = Render(tiny_model, Dream("conv3"), cfg, Start(size=(32, 32))).run()
    explicit = Render(
        tiny_model, Dream("conv3"), cfg, Start(size=(32, 32)), terms=Terms(transforms=transforms_from_config(cfg))
    ).run()
    assert torch.equal(default, explicit)


def test_invert_plus_dream_runs_with_the_reference_collected(tiny_model):
    """Today's `Invert(reference=img) + Dream(...)` used to fail: the sum carried no reference."""
    from cnnvis.objectives.inversion import Invert

    img = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    obj = Invert(reference=img, layers=["conv2"]) + 0.01 * Dream("conv3")
    out = Render(tiny_model, obj, RenderConfig(steps=3, tile=32, optimizer="adam", lr=0.05), Start(size=(32, 32))).run()
    assert out.shape == (1, 3, 32, 32) and torch.isfinite(out).all()


def test_keep_best_returns_the_start_the_objective_scored_highest(tiny_model):
    """Start.keep_best: N starts of one picture; the render gives back the one whose last evaluation scored
    highest, and the per-image scores are the objective's, summing to the step's score."""
    from cnnvis.objectives.inversion import Invert

    ref = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    cfg = RenderConfig(final_size="32x32", steps=3, tile=32, shift=False, seed=1)
    start = Start(size=(32, 32), batch=3, keep_best=True)
    r = Render(tiny_model, Invert(reference=ref, layers=["conv3"]), cfg, start)
    scores = []
    out = r.run(lambda p: scores.append(p.score))
    items = r.gradient.item_scores
    assert out.shape == (1, 3, 32, 32) and items.shape == (3,) and len(set(items.tolist())) == 3
    assert abs(float(items.sum()) - scores[-1]) <= 1e-4 * abs(scores[-1])
    best = int(items.argmax())
    assert torch.equal(out[0], r.canvas[best]) and torch.equal(r.image()[0], r.canvas[best])
    plain = Render(tiny_model, Invert(reference=ref, layers=["conv3"]), cfg, Start(size=(32, 32), batch=3)).run()
    assert plain.shape[0] == 3 and torch.equal(plain[best], out[0])  # the same starts, nothing else changed
