"""The decorrelated colour space (--decorrelate) for the pixel canvas: exact round trips, whitened
gradient steps, pixel operations in RGB, resizing with state, checkpoints; the plain path unchanged."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from conftest import assert_resumes_bit_for_bit, invoke

from cnnvis.canvas.start import Start
from cnnvis.config import RenderConfig
from cnnvis.io.manifest import read_manifest
from cnnvis.objectives.activation import Channel
from cnnvis.params import ParamContext, StepInfo, create
from cnnvis.params.color import COLOR, from_rgb, to_rgb
from cnnvis.params.pixel import DecorrelatedPixelParam, PixelParam
from cnnvis.pipeline.loop import Render
from cnnvis.pipeline.memory import canvas_buffers

MEAN = (0.4, 0.5, 0.6)


def _ctx(batch=1, **cfg):
    return ParamContext(
        RenderConfig(**{"decorrelate": True, "optimizer": "sgd", "momentum": 0.0, "lr": 0.1, **cfg}),
        torch.device("cpu"),
        torch.Generator().manual_seed(0),
        MEAN,
        batch,
    )


def test_round_trip_and_alpha_passes():
    x = torch.rand(2, 4, 5, 6, generator=torch.Generator().manual_seed(0))
    y = from_rgb(x, MEAN)
    assert torch.allclose(to_rgb(y, MEAN), x, atol=1e-5) and torch.equal(y[:, 3], x[:, 3])
    assert torch.allclose(to_rgb(torch.zeros(1, 3, 2, 2), MEAN), torch.tensor(MEAN).view(1, 3, 1, 1).expand(1, 3, 2, 2))


def test_the_flag_picks_the_decorrelated_canvas_and_keeps_the_start():
    start = torch.rand(1, 3, 8, 10, generator=torch.Generator().manual_seed(1))
    p = create(_ctx(), (8, 10), start)
    assert isinstance(p, DecorrelatedPixelParam) and p.kind == "pixel-decorrelated"
    assert torch.allclose(p.canvas(), start, atol=1e-5)
    plain = create(_ctx(decorrelate=False), (8, 10), start)
    assert type(plain) is PixelParam and plain.kind == "pixel" and torch.equal(plain.canvas(), start)


def test_a_step_is_whitened_by_the_colour_covariance():
    """SGD on y = C^-1 (x - mean): the image moves by -lr C C^T g, not -lr g."""
    p = create(_ctx(), (4, 4), torch.full((1, 3, 4, 4), 0.5))
    before = p.canvas()
    g = torch.zeros(1, 3, 4, 4)
    g[:, 0] = 1.0  # push red only
    p.apply_gradient(g)
    p.optimizer.step()
    p.clear_gradient()
    moved = (p.canvas() - before)[0, :, 0, 0]
    assert torch.allclose(moved, -0.1 * (COLOR @ COLOR.T)[:, 0], atol=1e-6)
    assert float(moved[1]) < 0 and float(moved[2]) < 0  # correlated colours move with red


def test_pixel_ops_run_in_rgb():
    p = create(
        _ctx(clamp_pixels=True, pixel_decay=0.5),
        (6, 6),
        torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(2)) * 3 - 1,
    )
    p.after_step(StepInfo(0, 0.0, torch.zeros(1, 3, 6, 6)))
    x = p.canvas()
    assert float(x.min()) >= -1e-6 and float(x.max()) <= 1 + 1e-6
    m = torch.ones(1, 1, 6, 6)
    m[..., :3] = 0
    p.after_step(StepInfo(0, 0.0, torch.zeros(1, 3, 6, 6), m))
    assert torch.allclose(p.canvas()[..., :3], torch.tensor(MEAN).view(1, 3, 1, 1).expand(1, 3, 6, 3), atol=1e-5)


def test_resize_carries_state_and_checkpoint_goes_on_bit_for_bit():
    ctx = _ctx(batch=2, optimizer="rmsprop")
    p = create(ctx, (8, 8), None)
    assert_resumes_bit_for_bit(ctx, (8, 8), p, DecorrelatedPixelParam, seed=3)
    q = p.resized((16, 16))
    assert isinstance(q, DecorrelatedPixelParam) and q.canvas().shape == (2, 3, 16, 16)
    assert q.bands.state("square_avg").shape == (2, 3, 16, 16)


def test_render_raises_the_objective_and_costs_its_buffers(tiny_model):
    scores = []
    Render(tiny_model, Channel("conv3", 2), RenderConfig(decorrelate=True, steps=10, seed=0), Start(size=(32, 32))).run(
        lambda p: scores.append(p.score)
    )
    assert scores[-1] > scores[0]
    assert canvas_buffers(RenderConfig(decorrelate=True)) > canvas_buffers(RenderConfig())
    assert canvas_buffers(RenderConfig(decorrelate=True, param="fft")) == canvas_buffers(RenderConfig(param="fft"))


@pytest.fixture
def tiny(factory_module):
    return ["--model", f"{factory_module}:factory", "--weights", "random"]


def test_cli_and_preset(tmp_path, tiny):
    res = invoke(
        [
            "dream",
            *tiny,
            "--noise",
            "--layer",
            "conv3",
            "--decorrelate",
            "--steps",
            2,
            "--octaves",
            1,
            "-q",
            "--out",
            tmp_path / "d.png",
        ]
    )
    assert res.exit_code == 0, (res.output, res.exception)
    res = invoke(
        ["dream", *tiny, "--noise", "--layer", "conv3", "--steps", 2, "--octaves", 1, "-q", "--out", tmp_path / "p.png"]
    )
    assert res.exit_code == 0, (res.output, res.exception)
    assert not np.array_equal(
        iio.imread(tmp_path / "d.png"), iio.imread(tmp_path / "p.png")
    )  # the same seed, another colour space
    res = invoke(
        [
            "dream",
            "--preset",
            "decorrelate",
            *tiny,
            "--layer",
            "conv3",
            "--channel",
            1,
            "--steps",
            1,
            "--octaves",
            1,
            "-q",
            "--out",
            tmp_path / "r.png",
        ]
    )
    assert res.exit_code == 0, (res.output, res.exception)
    assert read_manifest(str(tmp_path / "r.png"))["config"]["decorrelate"] is True
    assert invoke(["replay", "--trust-model", tmp_path / "r.png", "--check"]).exit_code == 0
