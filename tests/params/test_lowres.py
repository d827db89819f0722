"""The low-resolution tensor: an upsampled image, gradients, resizing, checkpoints, its factor's range."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_one_line_error, assert_resumes_bit_for_bit, invoke

from cnnvis.canvas.start import Start
from cnnvis.config import RenderConfig
from cnnvis.errors import InputError
from cnnvis.io.manifest import read_manifest
from cnnvis.objectives.activation import Channel
from cnnvis.params import ParamContext, StepInfo, create
from cnnvis.params.lowres import LowresParam, low_size
from cnnvis.pipeline.loop import Render


def _ctx(tiny_model, device="cpu", batch=1, **cfg):
    return ParamContext(
        RenderConfig(**{"param": "lowres", "optimizer": "adam", "lr": 0.05, **cfg}),
        torch.device(device),
        torch.Generator().manual_seed(0),
        tuple(tiny_model.mean),
        batch,
        tiny_model,
    )


def test_image_is_the_low_tensor_upsampled(tiny_model, device):
    p = create(_ctx(tiny_model, device, batch=2, lowres_factor=4), (18, 30), None)
    assert isinstance(p, LowresParam) and p.low.shape == (2, 3, 5, 8) and low_size((18, 30), 4) == (5, 8)
    x = p.canvas()
    assert x.shape == (2, 3, 18, 30) and x.device.type == device.type
    assert torch.allclose(x, F.interpolate(p.low.detach(), size=(18, 30), mode="bilinear", align_corners=False))
    # no detail finer than the factor: neighbouring pixels differ far less than in the low tensor
    assert float(x.diff(dim=-1).abs().mean()) < 0.5 * float(p.low.detach().diff(dim=-1).abs().mean())
    assert abs(float(x.mean()) - 0.5) < 0.05  # noise around the model's mean colour


def test_gradient_reaches_the_low_tensor_and_the_fit_improves(tiny_model, device):
    p = create(_ctx(tiny_model, device), (16, 16), None)
    target = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(1)).to(device)
    target = F.interpolate(target, size=(16, 16), mode="bilinear", align_corners=False)
    before = float((p.canvas() - target).square().mean())
    for _ in range(80):
        canvas = p.draw()
        p.apply_gradient(2 * (canvas - target))
        assert float(p.low.grad.abs().sum()) > 0
        p.optimizer.step()
        p.clear_gradient()
        p.after_step(StepInfo(0, 0.0, torch.zeros_like(canvas)))
    assert float((p.canvas() - target).square().mean()) < 0.05 * before


def test_factor_one_is_the_pixel_canvas_and_resize_keeps_the_picture(tiny_model):
    p = create(
        _ctx(tiny_model, lowres_factor=1),
        (12, 12),
        torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(2)),
    )
    assert torch.allclose(p.canvas(), p.low.detach(), atol=1e-6)
    q = create(_ctx(tiny_model, lowres_factor=4), (16, 16), None).resized((32, 32))
    assert q.low.shape == (1, 3, 8, 8) and q.canvas().shape == (1, 3, 32, 32)


def test_clamp_pixels_keeps_the_image_in_range(tiny_model):
    p = create(_ctx(tiny_model, clamp_pixels=True, lr=0.5), (16, 16), None)
    for _ in range(3):
        canvas = p.draw()
        p.apply_gradient(-torch.ones_like(canvas))  # push every pixel up
        p.optimizer.step()
        p.after_step(StepInfo(0, 0.0, torch.zeros_like(canvas)))
    assert float(p.canvas().max()) <= 1.0 and float(p.canvas().max()) > 0.99


@pytest.mark.parametrize("decorrelate", [False, True])
def test_checkpoint_round_trip_goes_on_bit_for_bit(tiny_model, decorrelate):
    ctx = _ctx(tiny_model, batch=2, decorrelate=decorrelate)
    assert_resumes_bit_for_bit(ctx, (16, 20), create(ctx, (16, 20), None), LowresParam, seed=1)


def test_render_raises_the_objective(tiny_model):
    scores = []
    Render(
        tiny_model,
        Channel("conv3", 2),
        RenderConfig(param="lowres", lowres_factor=2, optimizer="adam", lr=0.05, steps=12, seed=0),
        Start(size=(32, 32)),
    ).run(lambda p: scores.append(p.score))
    assert scores[-1] > scores[0]


def test_factor_below_one_is_one_line(tmp_path, factory_module):
    with pytest.raises(InputError, match="--lowres-factor must be >= 1"):
        RenderConfig(lowres_factor=0)
    tiny = ["--model", f"{factory_module}:factory", "--weights", "random"]
    args = "--layer conv3 --channel 1 --param lowres --lowres-factor 0 -q".split()
    assert_one_line_error(
        invoke(["prefer", *tiny, *args, "--out", tmp_path / "x.png"]),
        "--lowres-factor",
        "0 is not in the range x>=1",
    )
    args = "--layer conv3 --channel 1 --size 32x32 --param lowres --lowres-factor 2 --steps 2 -q".split()
    res = invoke(["prefer", *tiny, *args, "--out", tmp_path / "ok.png"])
    assert res.exit_code == 0, (res.output, res.exception)
    args = "--layer conv3 --channel 1 --size 32x32 --steps 2 -q".split()
    res = invoke(["prefer", "--preset", "lowres", *tiny, *args, "--out", tmp_path / "p.png"])
    assert res.exit_code == 0, (res.output, res.exception)
    cfg = read_manifest(str(tmp_path / "p.png"))["config"]
    assert (cfg["param"], cfg["lowres_factor"]) == ("lowres", 4)
