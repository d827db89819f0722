"""The banded canvas optimizer, carrying its state across sizes, learning-rate decay."""

from __future__ import annotations

import pytest
import torch

from cnnvis import InputError, RenderConfig
from cnnvis.params.optim import CanvasOptimizer, lr_at, make_optimizer


def _grads(shape, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g) for _ in range(n)]


def _stepped(cfg, shape=(1, 3, 12, 16), steps=3, band_rows=5, seed=0):
    canvas = torch.rand(*shape, generator=torch.Generator().manual_seed(seed + 100))
    opt = CanvasOptimizer(canvas, cfg, band_rows=band_rows)
    for g in _grads(shape, steps, seed):
        opt.step(g)
    return opt


def test_make_optimizer_kinds():
    p = torch.zeros(1, 3, 4, 4, requires_grad=True)
    rms = make_optimizer([p], RenderConfig(lr=0.02, decay_rate=0.9))
    assert isinstance(rms, torch.optim.RMSprop)
    assert rms.param_groups[0]["lr"] == 0.02 and rms.param_groups[0]["alpha"] == 0.9
    sgd = make_optimizer([p], RenderConfig(optimizer="sgd", momentum=0.7))
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0.7
    assert isinstance(make_optimizer([p], RenderConfig(optimizer="adam")), torch.optim.Adam)


@pytest.mark.parametrize("kind", ["rmsprop", "adam", "sgd"])
@pytest.mark.parametrize("band_rows", [1, 5, 256])
def test_banded_steps_equal_one_whole_canvas_optimizer(kind, band_rows):
    cfg = RenderConfig(optimizer=kind, lr=0.05)
    shape = (1, 3, 13, 9)
    canvas = torch.rand(*shape, generator=torch.Generator().manual_seed(1))
    init = canvas.clone()
    ref = canvas.clone().requires_grad_(True)
    ref_opt = make_optimizer([ref], cfg)
    opt = CanvasOptimizer(canvas, cfg, band_rows=band_rows)
    for g in _grads(shape, 4):
        opt.step(g)
        ref.grad = g.clone()
        ref_opt.step()
    assert opt.canvas is canvas  # updated in place
    assert torch.allclose(canvas, ref.detach(), atol=1e-6)
    assert not torch.allclose(canvas, init, atol=1e-3)


def test_state_is_canvas_shaped():
    cfg = RenderConfig()
    canvas = torch.rand(1, 3, 11, 7)
    opt = CanvasOptimizer(canvas, cfg, band_rows=4)
    assert opt.state("square_avg") is None
    g = _grads((1, 3, 11, 7), 1)[0]
    opt.step(g)
    sq = opt.state("square_avg")
    assert sq.shape == (1, 3, 11, 7)
    assert torch.allclose(sq, (1 - cfg.decay_rate) * g * g)


def test_set_lr_changes_step_size():
    cfg = RenderConfig(lr=0.01, optimizer="sgd", momentum=0.0)
    canvas = torch.zeros(1, 3, 4, 4)
    opt = CanvasOptimizer(canvas, cfg)
    opt.set_lr(0.5)
    opt.step(torch.ones(1, 3, 4, 4))
    assert torch.allclose(canvas, torch.full_like(canvas, -0.5))


@pytest.mark.parametrize("size", [(24, 32), (7, 9), (12, 16), (300, 20)])
def test_resized_carries_rmsprop_state(size):
    cfg = RenderConfig()
    opt = _stepped(cfg, steps=3)
    old_sq = opt.state("square_avg")
    new = opt.resized(size)
    assert new is not opt and new.canvas.shape == (1, 3, *size)
    sq = new.state("square_avg")
    assert sq is not None and sq.shape == (1, 3, *size)
    assert bool((sq >= 0).all())
    assert float(sq.mean()) == pytest.approx(float(old_sq.mean()), rel=0.35)
    assert {int(new.opt.state[b]["step"]) for b in new.bands} == {3}
    assert float(new.canvas.mean()) == pytest.approx(float(opt.canvas.mean()), abs=0.05)


def test_carried_state_changes_the_next_step():
    """With the state carried, the next step is smaller than a fresh RMSProp's first step (lr/sqrt(1-alpha))."""
    cfg = RenderConfig(lr=0.01, decay_rate=0.95)
    opt = _stepped(cfg, shape=(1, 3, 16, 16), steps=5).resized((32, 32))
    before = opt.canvas.clone()
    opt.step(_grads((1, 3, 32, 32), 1, seed=9)[0])
    step = (opt.canvas - before).abs()
    fresh = cfg.lr / (1 - cfg.decay_rate) ** 0.5
    assert float(step.mean()) < 0.9 * fresh
    assert {int(opt.opt.state[b]["step"]) for b in opt.bands} == {6}


def test_square_avg_stays_nonnegative_under_sharp_state():
    cfg = RenderConfig()
    opt = CanvasOptimizer(torch.zeros(1, 3, 8, 8), cfg)
    g = torch.zeros(1, 3, 8, 8)
    g[..., ::2, ::2] = 100.0  # a checkerboard of huge/zero gradients
    opt.step(g)
    new = opt.resized((21, 21))
    assert bool((new.state("square_avg") >= 0).all())


@pytest.mark.parametrize("kind,keys", [("adam", ("exp_avg", "exp_avg_sq")), ("sgd", ("momentum_buffer",))])
def test_resized_other_optimizers(kind, keys):
    cfg = RenderConfig(optimizer=kind)
    opt = _stepped(cfg, steps=2)
    new = opt.resized((6, 8))
    for k in keys:
        assert new.state(k).shape == (1, 3, 6, 8)
    if kind == "adam":
        assert bool((new.state("exp_avg_sq") >= 0).all())


def test_resized_without_state():
    opt = CanvasOptimizer(torch.rand(1, 3, 5, 5), RenderConfig())
    new = opt.resized((10, 10))
    assert new.canvas.shape == (1, 3, 10, 10) and new.state("square_avg") is None


def test_lr_at():
    cfg = RenderConfig(lr=0.1, lr_decay_every=3, lr_decay_factor=0.5)
    got = [lr_at(cfg, t) for t in range(8)]
    assert got == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025])
    assert lr_at(RenderConfig(lr=0.1, lr_decay_factor=0.5), 100) == 0.1  # decay off by default


@pytest.mark.parametrize(
    "kw,needle",
    [
        ({"lr": 0}, "--lr"),
        ({"lr": float("nan")}, "--lr"),
        ({"steps": 0}, "--steps"),
        ({"decay_rate": 1.0}, "--decay-rate"),
        ({"optimizer": "bfgs"}, "'bfgs'"),
        ({"lr_decay_every": -1}, "--lr-decay-every"),
        ({"tv_weight": -1.0}, "--tv-weight"),
        ({"tile": 0}, "--tile"),
        ({"overlap": -2}, "--overlap"),
        ({"p_target": "x"}, "--p-target"),
        ({"output": "y"}, "'y'"),
    ],
)
def test_render_config_rejects(kw, needle):
    with pytest.raises(InputError) as e:
        RenderConfig(**kw)
    assert needle in str(e.value)


def test_resized_keeps_band_height_when_growing_from_a_small_canvas():
    from cnnvis.config import RenderConfig
    from cnnvis.params.optim import BAND_ROWS, CanvasOptimizer

    cfg = RenderConfig()
    small = CanvasOptimizer(torch.rand(1, 3, 40, 40), cfg)
    small.step(torch.randn(1, 3, 40, 40))
    big = small.resized((3 * BAND_ROWS, 64))
    assert [b.shape[-2] for b in big.bands] == [BAND_ROWS] * 3
    assert big.state("square_avg").shape == (1, 3, 3 * BAND_ROWS, 64)
