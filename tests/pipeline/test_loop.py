"""The multiscale tiled optimization loop, end to end, on the tiny CNN and on EfficientNet-Lite0."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from cnnvis import Channel, Dream, InputError, Neuron, Render, RenderConfig, render
from cnnvis.canvas.sizes import resize
from cnnvis.canvas.start import Start


def _init(h=48, w=48, seed=0):
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed)) * 0.6 + 0.2


def _run(model, objective, cfg, init=None, device="cpu"):
    """Run on ``device``; the canvases come back on the CPU."""
    log = []
    out = Render(model, objective, cfg, Start(init=init), device=device).run(lambda p: log.append((p, p.image().cpu())))
    return out.cpu(), log


def test_dream_raises_score_and_changes_image(tiny_model, device):
    init = _init()
    cfg = RenderConfig(steps=8, lr=0.02)
    out, log = _run(tiny_model, Dream("conv3"), cfg, init, device)
    scores = [p.score for p, _ in log]
    assert len(scores) == 8
    assert scores[-1] > scores[0] * 1.05
    assert out.shape == init.shape
    assert float((out - init).abs().mean()) > 0.02
    p0 = log[0][0]
    assert (p0.step, p0.total, p0.size_index, p0.num_sizes, p0.size, p0.size_step, p0.steps_per_size) == (
        1,
        8,
        0,
        1,
        (48, 48),
        1,
        8,
    )
    assert [p.step for p, _ in log] == list(range(1, 9))
    assert all(p.lr == pytest.approx(0.02) for p, _ in log)
    assert torch.equal(log[-1][1], out)


def test_optimizer_state_persists_between_steps(tiny_model):
    """RMSProp's first update of a pixel is lr/sqrt(1-alpha); later ones are smaller only if its state survived."""
    cfg = RenderConfig(steps=4, lr=0.01, decay_rate=0.95)
    init = _init()
    _, log = _run(tiny_model, Dream("conv3"), cfg, init)
    images = [init] + [img for _, img in log]
    deltas = [float((b - a).abs().mean()) for a, b in zip(images, images[1:])]
    first = cfg.lr / (1 - cfg.decay_rate) ** 0.5
    assert deltas[0] == pytest.approx(first, rel=0.05)  # (nearly) every pixel moves by the fresh-state step
    for d in deltas[1:]:
        assert d < 0.85 * first, deltas


def test_multiscale_plan_sizes_and_carried_state(tiny_model):
    cfg = RenderConfig(initial_size="x0.5", final_size="x1", num_sizes=3, steps=3, lr=0.01)
    init = _init(40, 56)
    r = Render(tiny_model, Dream("conv3"), cfg, Start(init=init))
    assert r.plan == [(20, 28), (28, 40), (40, 56)]
    log = []
    out = r.run(lambda p: log.append((p, p.image())))
    assert out.shape == (1, 3, 40, 56)
    assert [p.size for p, _ in log] == [(20, 28)] * 3 + [(28, 40)] * 3 + [(40, 56)] * 3
    assert [p.size_index for p, _ in log] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [p.size_step for p, _ in log] == [1, 2, 3] * 3
    assert log[-1][0].step == log[-1][0].total == 9
    # First step of size 2 starts from the resized end of size 1 with RMSProp's state carried over.
    start = resize(log[2][1], (28, 40))
    delta = float((log[3][1] - start).abs().mean())
    assert delta < 0.85 * cfg.lr / (1 - cfg.decay_rate) ** 0.5


def test_noise_init_uses_model_input_size(tiny_model):
    cfg = RenderConfig(steps=2, init_scale=0.1)
    log = []
    out = render(tiny_model, Dream("conv3"), cfg, init=None, callback=log.append)
    assert out.shape == (1, 3, 32, 32)
    assert len(log) == 2
    assert abs(float(out.mean()) - 0.5) < 0.2  # noise around the model's mean colour
    assert float(out.std()) > 0.005


def test_same_seed_same_output_different_seed_differs(tiny_model):
    init = _init(40, 40)

    def go(seed, noise=False):
        cfg = RenderConfig(steps=3, tile=16, seed=seed, jitter=2)
        return render(tiny_model, Dream("conv3"), cfg, init=None if noise else init)

    a, b, c = go(1), go(1), go(2)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    n1, n2, n3 = go(5, True), go(5, True), go(6, True)
    assert torch.equal(n1, n2)
    assert float((n1 - n3).abs().mean()) > 0.01


@pytest.mark.parametrize(
    "objective,needle",
    [
        (Channel("conv3", 16), "channel 16"),
        (Neuron("conv3", 99), "channel 99"),
        (Neuron("conv3", 2, x=40, y=0), "x=40"),
        (Dream("conv3") + Channel("conv2", -1), "channel -1"),
    ],
)
def test_bad_index_raises_before_any_step(tiny_model, objective, needle):
    calls = []
    with pytest.raises(InputError, match=needle):
        Render(tiny_model, objective, RenderConfig(steps=2), Start(init=_init(32, 32))).run(calls.append)
    assert calls == []


def test_channel_and_neuron_objectives_run(tiny_model):
    for obj in (Channel("conv3", 3), Neuron("conv3", 5, x=2, y=3)):
        _, log = _run(tiny_model, obj, RenderConfig(steps=5, lr=0.02, tile=16), _init(32, 32))
        assert log[-1][0].score > log[0][0].score


@pytest.mark.parametrize(
    "cfg_kw,needle",
    [
        ({"final_size": "4x4"}, "4x4"),
        ({"initial_size": "x0.1", "final_size": "x1", "num_sizes": 2}, "below the minimum"),
        ({"tile": 4}, "--tile 4"),
        ({"tile": 16, "overlap": 16}, "--overlap 16"),
    ],
)
def test_bad_sizes_raise(tiny_model, cfg_kw, needle):
    with pytest.raises(InputError, match=needle):
        Render(tiny_model, Dream("conv3"), RenderConfig(steps=1, **cfg_kw), Start(init=_init(40, 40)))


def test_unknown_layer_raises(tiny_model):
    with pytest.raises(InputError, match="did you mean 'conv3'"):
        Render(tiny_model, Dream("conv4"), RenderConfig(steps=1), Start(init=_init(32, 32)))


def test_tiles_batches_and_regularizers_options_run(tiny_model):
    cfg = RenderConfig(
        steps=3,
        tile=16,
        overlap=4,
        batch_size=3,
        jitter=2,
        optimizer="adam",
        tv_weight=0.1,
        tv_operator="sobel",
        p_weight=0.01,
        aux_p_weight=0.01,
        blur_every=2,
        blur_sigma=0.5,
        lr_decay_every=1,
        lr_decay_factor=0.5,
        normalize_grad=False,
    )
    _, log = _run(tiny_model, Dream("conv3", form="meansquare"), cfg, _init(40, 50))
    assert [p.lr for p, _ in log] == pytest.approx([0.01, 0.005, 0.0025])
    assert all(p.reg_loss > 0 for p, _ in log)
    assert all(np.isfinite(p.score) for p, _ in log)


def test_image_before_start_raises(tiny_model):
    r = Render(tiny_model, Dream("conv3"), RenderConfig(steps=1), Start(init=_init(32, 32)))
    with pytest.raises(RuntimeError):
        r.image()


def test_real_model_dream_on_cat(lite0):
    img = cv2.resize(skimage.data.chelsea(), (128, 96), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    init = torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()
    cfg = RenderConfig(steps=4, num_sizes=1)
    log = []
    out = render(lite0, Dream("blocks.4.2"), cfg, init=init, callback=log.append)
    assert out.shape == (1, 3, 96, 128)
    scores = [p.score for p in log]
    assert len(scores) == 4 and scores[-1] > scores[0]
    assert float((out - init).abs().mean()) > 0.01
    assert bool(torch.isfinite(out).all())


def test_real_model_tiled_multiscale_dream(lite0):
    """The embedded model through several tiles and two sizes: the score rises at the final size."""
    img = cv2.resize(skimage.data.astronaut(), (200, 160), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    init = torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()
    cfg = RenderConfig(steps=3, octaves=2, octave_scale=1.25, tile=96, overlap=24)
    log = []
    out = render(lite0, Dream("blocks.4.2"), cfg, init=init, callback=log.append)
    assert out.shape == (1, 3, 160, 200)
    assert [p.size for p in log] == [(128, 160)] * 3 + [(160, 200)] * 3
    last = [p.score for p in log if p.size_index == 1]
    assert last[-1] > last[0]
    assert float((out - init).abs().mean()) > 0.01
