"""The parameterization protocol: every kind draws (N, 3, H, W), steps, resizes and restores."""

from __future__ import annotations

import pytest
import torch

from cnnvis.config import RenderConfig
from cnnvis.errors import InputError
from cnnvis.params import PARAM_KINDS, ParamContext, StepInfo, create, restore
from cnnvis.params.pixel import PixelParam


def _ctx(tiny_model, device, batch=2, **cfg):
    return ParamContext(
        RenderConfig(**{"optimizer": "adam", "lr": 0.05, **cfg}),
        torch.device(device),
        torch.Generator().manual_seed(0),
        tuple(tiny_model.mean),
        batch,
        tiny_model,
    )


def test_the_built_in_kinds_are_registered():
    assert {"pixel", "fft", "generator"} <= set(PARAM_KINDS)


@pytest.mark.parametrize("kind", ["pixel", "fft"])
def test_draw_step_resize_and_restore(tiny_model, device, kind):
    ctx = _ctx(tiny_model, device, param=kind)
    p = create(ctx, (16, 20), None)
    assert p.kind == kind and p.canvas().shape == (2, 3, 16, 20) and p.canvas().device.type == torch.device(device).type
    target = torch.rand(2, 3, 16, 20, generator=torch.Generator().manual_seed(1)).to(device)
    for _ in range(3):  # minimize |canvas - target|^2 through the protocol only
        canvas = p.draw()
        p.apply_gradient(2 * (canvas - target))
        p.optimizer.step()
        p.clear_gradient()
        p.after_step(StepInfo(0, 0.0, torch.zeros_like(canvas)))
    state = p.state_dict()
    back = restore(ctx, (16, 20), state)
    assert type(back) is type(p) and torch.equal(back.canvas(), p.canvas())
    # one more identical step on both: the optimizer state came back too
    for q in (p, back):
        q.apply_gradient(2 * (q.draw() - target))
        q.optimizer.step()
        q.clear_gradient()
    assert torch.equal(back.canvas(), p.canvas())
    bigger = p.resized((24, 30))
    assert bigger.canvas().shape == (2, 3, 24, 30) and bigger.kind == kind


def test_pixel_resize_carries_the_per_pixel_optimizer_state(tiny_model, device):
    ctx = _ctx(tiny_model, device, batch=1, optimizer="rmsprop")
    p = create(ctx, (8, 8), None)
    p.apply_gradient(torch.ones(1, 3, 8, 8, device=device))
    p.optimizer.step()
    q = p.resized((16, 16))
    assert isinstance(q, PixelParam)
    sq = q.bands.state("square_avg")
    assert sq is not None and sq.shape == (1, 3, 16, 16) and float(sq.min()) > 0


def test_noise_starts_per_image_from_item_generators(tiny_model):
    gens = [torch.Generator().manual_seed(s) for s in (5, 6)]
    ctx = ParamContext(
        RenderConfig(),
        torch.device("cpu"),
        torch.Generator().manual_seed(0),
        tuple(tiny_model.mean),
        2,
        tiny_model,
        None,
        gens,
    )
    two = create(ctx, (8, 8), None).canvas()
    alone = ParamContext(
        RenderConfig(),
        torch.device("cpu"),
        torch.Generator().manual_seed(0),
        tuple(tiny_model.mean),
        1,
        tiny_model,
        None,
        [torch.Generator().manual_seed(6)],
    )
    assert torch.equal(two[1:], create(alone, (8, 8), None).canvas())


def test_restore_rejects_an_unknown_kind(tiny_model):
    with pytest.raises(InputError, match="kind 'nope'"):
        restore(_ctx(tiny_model, "cpu"), (8, 8), {"kind": "nope", "tensors": {}, "opt": {}})


def test_pixel_after_step_runs_icnn_pixel_ops_per_image(tiny_model):
    ctx = _ctx(tiny_model, "cpu", batch=2, pixel_decay=0.5)
    p = create(ctx, (8, 8), torch.stack([torch.zeros(3, 8, 8), torch.ones(3, 8, 8)]))
    p.after_step(StepInfo(0, 0.0, torch.zeros(2, 3, 8, 8)))
    c = p.canvas()
    assert torch.allclose(c[0], torch.full_like(c[0], 0.25)) and torch.allclose(c[1], torch.full_like(c[1], 0.75))
