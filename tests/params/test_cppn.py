"""The CPPN parameterization: valid images, gradients to every weight, resolution independence,
banded rendering, and the loop's render-only final size."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_one_line_error, invoke

from cnnvis.canvas.start import Start
from cnnvis.config import RenderConfig
from cnnvis.errors import InputError
from cnnvis.io.manifest import read_manifest
from cnnvis.objectives.activation import Channel
from cnnvis.params import ParamContext, StepInfo, create, restore
from cnnvis.params.cppn import CPPN, HIDDEN, LAYERS, CPPNParam, coordinates
from cnnvis.params.stages import optimized_sizes
from cnnvis.pipeline.loop import Render


def _ctx(tiny_model, device="cpu", batch=1, **cfg):
    return ParamContext(
        RenderConfig(**{"param": "cppn", "optimizer": "adam", "lr": 0.02, **cfg}),
        torch.device(device),
        torch.Generator().manual_seed(0),
        tuple(tiny_model.mean),
        batch,
        tiny_model,
    )


def _fit(p, target, steps):
    """Minimize |canvas - target|^2 through the protocol only."""
    for _ in range(steps):
        canvas = p.draw()
        p.apply_gradient(2 * (canvas - target))
        p.optimizer.step()
        p.clear_gradient()
        p.after_step(StepInfo(0, 0.0, torch.zeros_like(canvas)))


def _target(h, w, device="cpu"):
    """A smooth colour pattern in [0.2, 0.8]."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    return torch.stack([0.5 + 0.3 * torch.sin(3 * xx), 0.5 + 0.3 * torch.cos(2 * yy), 0.5 + 0.3 * xx * yy])[None].to(
        device
    )


def test_start_is_a_flat_colour_per_image_in_range(tiny_model, device):
    p = create(_ctx(tiny_model, device, batch=2), (16, 20), None)
    x = p.canvas()
    assert isinstance(p, CPPNParam) and x.shape == (2, 3, 16, 20) and x.device.type == device.type
    assert float(x.min()) > 0 and float(x.max()) < 1
    # lucid's start: zero output weights, so each image is sigmoid(its biases), flat
    assert float(x.flatten(2).std(-1).max()) < 1e-6
    assert not torch.allclose(x[0], x[1])  # each image its own network


def test_gradients_reach_every_weight_and_the_fit_improves(tiny_model, device):
    p = create(_ctx(tiny_model, device), (24, 24), None)
    target = _target(24, 24, device)
    before = float((p.canvas() - target).square().mean())
    _fit(p, target, 1)  # the first step moves the (zero) output weights only
    p.apply_gradient(2 * (p.draw() - target))
    assert all(t.grad is not None and float(t.grad.abs().sum()) > 0 for t in p.parameters())
    p.clear_gradient()
    _fit(p, target, 60)
    assert float((p.canvas() - target).square().mean()) < 0.5 * before


def test_resolution_independent(tiny_model):
    p = create(_ctx(tiny_model), (32, 32), None)
    _fit(p, _target(32, 32), 80)
    q = p.resized((64, 64))
    # the same networks and optimizer state, on a finer grid of the same square
    assert q.net is p.net and q.optimizer is p.optimizer and q.size == (64, 64)
    small, big = p.canvas(), q.canvas()
    assert big.shape == (1, 3, 64, 64) and float(small.flatten(2).std(-1).min()) > 0.02  # a pattern, not flat
    up = F.interpolate(small, size=(64, 64), mode="bilinear", align_corners=False)
    inner = (slice(None), slice(None), slice(2, -2), slice(2, -2))  # bilinear's edge rows extrapolate flat
    assert (
        float((big - up)[inner].abs().mean()) < 0.01 and float((big - up)[inner].abs().max()) < 0.15
    )  # the interpolation error of the 32x32 one
    # a non-square image keeps the scale of its shorter side: its middle is the square image
    wide = p.resized((32, 64)).canvas()
    assert torch.allclose(wide[..., 16:48], small, atol=1e-5)


def test_the_network_is_lucids():
    """(x, y) -> 8 x [1x1 conv, [atan(z) / 0.67, atan(z)^2 / 0.6]] -> 1x1 conv -> sigmoid, written plainly."""
    net = CPPN.random(2, 4, torch.Generator().manual_seed(0), "cpu")
    with torch.no_grad():
        net.weights[-1].normal_(0, 0.3, generator=torch.Generator().manual_seed(1))  # lucid starts them at zero
        coords = coordinates((12, 16), (0, 12), "cpu")
        h = coords.expand(2, *coords.shape)
        for k, (w, b) in enumerate(zip(net.weights, net.biases)):
            z = w @ h + b[:, :, None]
            a = torch.atan(z)
            h = torch.cat([a / 0.67, a * a / 0.6], 1) if k < LAYERS else torch.sigmoid(z)
        assert len(net.weights) == LAYERS + 1 and net.weights[1].shape == (2, HIDDEN, 2 * HIDDEN)
        assert torch.allclose(net(coords), h, atol=1e-5) and h.shape == (2, 4, 12 * 16)


def test_optimized_sizes():
    assert optimized_sizes([(16, 16), (32, 32), (64, 64)], 32) == [(16, 16), (32, 32)]
    assert optimized_sizes([(4096, 4096)], 224) == [(224, 224)]
    assert optimized_sizes([(2160, 3840)], 224) == [(126, 224)]
    assert optimized_sizes([(64, 96)], 32, min_side=32) == [(32, 48)]  # the shorter side at the model's minimum


def test_coordinates_span_the_shorter_side_symmetrically():
    xy = coordinates((4, 8), (0, 4), "cpu")
    x, y = xy[0].view(4, 8), xy[1].view(4, 8)
    assert torch.allclose(y[:, 0], -y.flip(0)[:, 0]) and torch.allclose(x[0], -x[0].flip(0))
    assert abs(float(y.max()) - 3**0.5 * 3 / 4) < 1e-6  # pixel centres of a side of 4 inside (-sqrt 3, sqrt 3)


def test_banded_render_and_gradient_equal_the_whole_image(tiny_model):
    p = create(_ctx(tiny_model), (200, 1100), None)
    _fit(p, _target(200, 1100), 2)
    assert len(p._bands()) > 1
    whole = p.images()
    assert torch.allclose(p.canvas(), whole.detach(), atol=1e-6)
    g = torch.randn(whole.shape, generator=torch.Generator().manual_seed(3))
    p.optimizer.zero_grad()
    whole.backward(g)
    expected = [t.grad.clone() for t in p.parameters()]
    p.draw()
    p.apply_gradient(g)  # the banded path: each band's graph again
    for t, e in zip(p.parameters(), expected):
        assert torch.allclose(
            t.grad, e, rtol=1e-3, atol=1e-4 * float(e.abs().max())
        )  # sums over 220K pixels, in another order


def test_checkpoint_round_trip_goes_on_bit_for_bit(tiny_model):
    ctx = _ctx(tiny_model, batch=2)
    p = create(ctx, (16, 16), None)
    target = _target(16, 16)
    _fit(p, target, 3)
    back = restore(ctx, (16, 16), p.state_dict())
    assert isinstance(back, CPPNParam) and torch.equal(back.canvas(), p.canvas())
    _fit(p, target, 1)
    _fit(back, target, 1)
    assert torch.equal(back.canvas(), p.canvas())


def test_cannot_start_from_an_image_or_a_prior(tiny_model):
    with pytest.raises(InputError, match="cannot start from an image"):
        create(_ctx(tiny_model), (16, 16), torch.rand(1, 3, 16, 16))
    with pytest.raises(InputError, match="cannot start from an image or a generator prior"):
        CPPNParam.check(RenderConfig(param="cppn"), True)  # a generator's image is a start too
    with pytest.raises(InputError, match="--decorrelate"):
        RenderConfig(param="cppn", decorrelate=True)


def test_render_optimizes_at_the_tile_and_draws_the_final_size_once(tiny_model):
    """The final size is one CPPN forward pass: no step and no network evaluation happen at it."""
    with tiny_model.capture(["conv3"]) as cap:
        cap(torch.rand(1, 3, 32, 32))  # the layouts' one probe pass per module, before counting
    calls = []
    # a pre-hook: it sees every forward pass, also those the capture cuts short
    handle = tiny_model.module.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        kw = dict(param="cppn", optimizer="adam", lr=0.02, steps=4, seed=1, shift=False)
        small = Render(tiny_model, Channel("conv3", 2), RenderConfig(**kw), Start(size=(32, 32)))
        a = small.run()
        n_small = len(calls)
        r = Render(tiny_model, Channel("conv3", 2), RenderConfig(final_size="96x128", **kw), Start(size=(32, 32)))
        assert r.plan == [(24, 32)] and r.out_size == (96, 128)
        steps = []
        out = r.run(lambda p: steps.append(p.size))
    finally:
        handle.remove()
    assert out.shape == (1, 3, 96, 128) and steps == [(24, 32)] * 4
    assert len(calls) == 2 * n_small  # the same steps and probe at 24x32: nothing more for 96x128
    assert a.shape == (1, 3, 32, 32)
    # the final image is the optimized network's, drawn at 96x128
    again = CPPNParam.from_tensors(r.ctx, (24, 32), r.param.tensors()).resized((96, 128)).canvas()
    assert torch.equal(out, again)
    # a plan whose sizes fit the tile optimizes at each of them with the same networks
    multi = Render(
        tiny_model, Channel("conv3", 2), RenderConfig(octaves=2, octave_scale=2.0, **kw), Start(size=(32, 32))
    )
    assert multi.plan == [(16, 16), (32, 32)] and multi.out_size == (32, 32)
    assert multi.run().shape == (1, 3, 32, 32)
    assert len(multi.param.net.weights) == LAYERS + 1


def test_cli_prefer_cppn_final_size(tmp_path, factory_module):
    import imageio.v3 as iio

    out = tmp_path / "c.png"
    tiny = ["--model", f"{factory_module}:factory", "--weights", "random"]
    args = "--layer conv3 --channel 1 --size 32x32 --param cppn --final-size 64x96 --steps 2 -q".split()
    res = invoke(["prefer", *tiny, *args, "--out", out])
    assert res.exit_code == 0, (res.output, res.exception)
    assert iio.imread(out).shape == (64, 96, 3)
    # optimized at 32x48: the final size scaled to the tile (32), its shorter side kept at the model's minimum (32)
    assert read_manifest(str(out))["config"]["final_size"] == "64x96"
    assert_one_line_error(
        invoke(
            ["dream", *tiny, "--layer", "conv3", "--param", "cppn", "--steps", 1, "-q", "--out", tmp_path / "d.png"]
        ),
        "--param cppn",
        "cannot start from an image",
        "--noise",
    )
    args = "--noise --layer conv3 --param cppn --steps 1 --octaves 1 --final-size 40x40 -q".split()
    res = invoke(["dream", *tiny, *args, "--out", tmp_path / "d.png"])
    assert res.exit_code == 0, (res.output, res.exception)
    # the bundled preset, made small: optimized at the tile, drawn at its final size
    args = "--layer conv3 --channel 1 --size 32x32 --final-size 128x128 --steps 2 -q".split()
    res = invoke(["prefer", "--preset", "cppn", *tiny, *args, "--out", tmp_path / "p.png"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert (
        iio.imread(tmp_path / "p.png").shape == (128, 128, 3)
        and read_manifest(str(tmp_path / "p.png"))["config"]["param"] == "cppn"
    )
