"""RGBA images (--alpha): every kind draws 4 channels, the network sees them over random
backgrounds, the opacity penalty makes them transparent, and the output is an RGBA PNG."""

from __future__ import annotations

import imageio.v3 as iio
import pytest
import torch
from conftest import assert_one_line_error, invoke

from cnnvis.canvas.start import Start
from cnnvis.config import RenderConfig
from cnnvis.errors import InputError
from cnnvis.io.images import to_uint8
from cnnvis.objectives.activation import Channel
from cnnvis.objectives.inversion import Invert
from cnnvis.params import ParamContext, create, restore
from cnnvis.params.color import START_ALPHA
from cnnvis.params.generator import GeneratorParam
from cnnvis.pipeline.loop import Render
from cnnvis.pipeline.memory import preflight
from cnnvis.regularize.penalties import AlphaPenalty, regularizer_gradient, regularizers_from_config
from cnnvis.regularize.transforms import Composite, transforms_from_config

KINDS = [
    dict(param="pixel"),
    dict(param="pixel", decorrelate=True),
    dict(param="fft"),
    dict(param="lowres"),
    dict(param="cppn"),
]


def _ctx(tiny_model, batch=2, **cfg):
    return ParamContext(
        RenderConfig(**{"alpha": True, "optimizer": "adam", "lr": 0.05, **cfg}),
        torch.device("cpu"),
        torch.Generator().manual_seed(0),
        tuple(tiny_model.mean),
        batch,
        tiny_model,
    )


@pytest.mark.parametrize("kw", KINDS, ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_every_kind_draws_rgba_and_restores(tiny_model, kw):
    ctx = _ctx(tiny_model, **kw)
    p = create(ctx, (16, 20), None)
    x = p.canvas().clone()  # the pixel canvas itself is live
    assert x.shape == (2, 4, 16, 20)
    a = x[:, 3]
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    if kw["param"] != "cppn":  # noise starts half transparent (the CPPN: sigmoid of its random biases)
        assert abs(float(a.mean()) - START_ALPHA) < 0.02
    g = torch.zeros_like(x)
    g[:, 3] = 1.0  # make it more transparent
    p.apply_gradient(p.draw() * 0 + g)
    p.optimizer.step()
    p.clear_gradient()
    assert float(p.canvas()[:, 3].mean()) < float(a.mean())  # the gradient reached the alpha channel
    back = restore(ctx, (16, 20), p.state_dict())
    assert torch.equal(back.canvas(), p.canvas())


def test_an_rgb_start_gets_an_alpha_channel(tiny_model):
    p = create(_ctx(tiny_model, batch=1, param="pixel"), (8, 8), torch.rand(1, 3, 8, 8))
    assert p.canvas().shape == (1, 4, 8, 8) and torch.all(p.canvas()[:, 3] == START_ALPHA)


def test_composite_over_random_backgrounds():
    gen = torch.Generator().manual_seed(0)
    rgb = torch.rand(6, 3, 8, 8, generator=gen)
    opaque = Composite()(torch.cat([rgb, torch.ones(6, 1, 8, 8)], 1), torch.Generator().manual_seed(1))
    assert opaque.shape == (6, 3, 8, 8) and torch.equal(opaque, rgb)
    bg = Composite()(torch.cat([rgb, torch.zeros(6, 1, 8, 8)], 1), torch.Generator().manual_seed(1))
    assert float(bg.min()) >= 0 and float(bg.max()) <= 1 and not torch.allclose(bg, rgb)
    flat = bg.flatten(2).std(-1).amax(1) < 1e-6  # a flat colour, or noise
    assert flat.any() and (~flat).any()
    again = Composite()(torch.cat([rgb, torch.zeros(6, 1, 8, 8)], 1), torch.Generator().manual_seed(1))
    assert torch.equal(bg, again)  # the run's seeded generator decides
    assert torch.equal(Composite()(rgb, gen), rgb)  # RGB passes
    x = torch.cat([rgb, torch.full((6, 1, 8, 8), 0.5)], 1).requires_grad_(True)
    Composite()(x, torch.Generator().manual_seed(1)).sum().backward()
    assert float(x.grad[:, 3].abs().sum()) > 0
    assert isinstance(transforms_from_config(RenderConfig(alpha=True))[0], Composite)
    assert not any(isinstance(t, Composite) for t in transforms_from_config(RenderConfig()))


def test_alpha_penalty_is_weight_per_alpha_value():
    x = torch.rand(2, 4, 10, 12)
    out = torch.zeros_like(x)
    loss = regularizer_gradient(x, [AlphaPenalty(0.3)], out, strip_rows=3)
    assert abs(loss - 0.3 * float(x[:, 3].sum())) < 1e-3
    assert torch.allclose(out[:, 3], torch.full_like(out[:, 3], 0.3)) and float(out[:, :3].abs().sum()) == 0
    assert any(
        isinstance(r, AlphaPenalty) for r in regularizers_from_config(RenderConfig(alpha=True), 0, "zero", (0.5,) * 3)
    )
    assert not any(isinstance(r, AlphaPenalty) for r in regularizers_from_config(RenderConfig(), 0, "zero", (0.5,) * 3))


def _mean_alpha(tiny_model, penalty, **kw):
    scores = []
    cfg = RenderConfig(alpha=True, alpha_penalty=penalty, optimizer="adam", steps=25, seed=0, **kw)
    out = Render(tiny_model, Channel("conv3", 2), cfg, Start(size=(32, 32))).run(lambda p: scores.append(p.score))
    return float(out[:, 3].mean()), scores


@pytest.mark.parametrize("param,lr", [("pixel", 0.05), ("fft", 0.3)])
def test_the_penalty_makes_it_transparent_and_the_objective_rises(tiny_model, param, lr):
    free, scores = _mean_alpha(tiny_model, 0.0, param=param, lr=lr)
    penalized, _ = _mean_alpha(tiny_model, 1.0, param=param, lr=lr)
    assert penalized < free - 0.1 and penalized < START_ALPHA
    assert sum(scores[-5:]) > sum(scores[:5])


def test_inversion_with_references_runs_on_rgba(tiny_model):
    ref = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    losses = []
    cfg = RenderConfig(alpha=True, optimizer="adam", lr=0.05, steps=15, seed=0, shift=False, alpha_penalty=0.0)
    out = Render(tiny_model, Invert(reference=ref, layers=["conv2"]), cfg, Start(size=(32, 32))).run(
        lambda p: losses.append(-p.score)
    )
    assert out.shape == (1, 4, 32, 32) and losses[-1] < losses[0]


def test_checks_and_memory(tiny_model):
    with pytest.raises(InputError, match="--alpha makes an RGBA image"):
        GeneratorParam.check(RenderConfig(alpha=True), False)
    rgb = preflight((100, 100), 1, RenderConfig(), torch.device("cpu"), available=1 << 40)
    assert preflight((100, 100), 1, RenderConfig(alpha=True), torch.device("cpu"), available=1 << 40) == pytest.approx(
        rgb * 4 / 3, rel=1e-6
    )


def test_to_uint8_keeps_alpha():
    x = torch.tensor([[[[-0.5, 0.5]], [[0.2, 0.4]], [[0.0, 2.0]], [[0.25, 1.5]]]])
    assert to_uint8(x).shape == (1, 2, 4)
    assert to_uint8(x)[0, :, 3].tolist() == [64, 255]
    assert to_uint8(x, "rescale")[0, :, 3].tolist() == [64, 255]  # rescale maps the colours only
    assert to_uint8(x, "rescale")[0, :, :3].min() == 0 and to_uint8(x, "rescale")[0, :, :3].max() == 255


@pytest.fixture
def tiny(factory_module):
    return ["--model", f"{factory_module}:factory", "--weights", "random"]


def test_cli_writes_an_rgba_png(tmp_path, tiny):
    out = tmp_path / "a.png"
    args = "--layer conv3 --channel 1 --size 32x32 --alpha --alpha-penalty 1.0 --steps 8 -q".split()
    res = invoke(["prefer", *tiny, *args, "--out", out, "--video", tmp_path / "a.gif"])
    assert res.exit_code == 0, (res.output, res.exception)
    img = iio.imread(out)
    assert img.shape == (32, 32, 4) and img[..., 3].min() < 255
    assert iio.imread(tmp_path / "a.gif").shape[-1] in (3, 4)  # the video frames: over white
    args = "--layer conv3 --channel 1,2 --size 32x32 --alpha --steps 2 -q".split()
    res = invoke(["prefer", *tiny, *args, "--out", tmp_path / "b.png"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert (
        iio.imread(tmp_path / "b_c1.png").shape == (32, 32, 4) and iio.imread(tmp_path / "b_sheet.png").shape[-1] == 4
    )
    args = "--layer conv3 --channel 1 --size 32x32 --steps 2 -q".split()
    res = invoke(["prefer", "--preset", "alpha", *tiny, *args, "--out", tmp_path / "p.png"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert iio.imread(tmp_path / "p.png").shape == (32, 32, 4)


def test_cli_alpha_needs_png(tmp_path, tiny):
    for cmd in (
        ["prefer", "--layer", "conv3", "--channel", 1],
        ["dream", "--noise", "--layer", "conv3"],
        ["invert", "--layer", "conv3"],
    ):
        extra = [tmp_path / "missing.png"] if cmd[0] == "invert" else []
        assert_one_line_error(
            invoke([*cmd, *extra, *tiny, "--alpha", "-q", "--out", tmp_path / "x.jpg"]),
            "--alpha needs a PNG output, got",
            "x.jpg",
        )
    assert not (tmp_path / "x.jpg").exists()
