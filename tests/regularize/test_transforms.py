"""Transformation robustness: the random roll and the random zoom + rotation of tile batches."""

from __future__ import annotations

import itertools

import pytest
import torch

from cnnvis.regularize.transforms import (
    Pad,
    RandomCrop,
    apply_transforms,
    constant_pad,
    jitter_roll,
    random_affine,
    random_crop,
    transforms_from_config,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _batch(device, shape=(3, 3, 17, 23), seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    return torch.rand(*shape, generator=_gen(seed), dtype=dtype).to(device)


def _find_shift(x: torch.Tensor, y: torch.Tensor, max_shift: int) -> tuple[int, int]:
    """The one (dy, dx) in [-max_shift, max_shift]^2 with ``y == roll(x, (dy, dx))``, exactly."""
    rng = range(-max_shift, max_shift + 1)
    found = [(dy, dx) for dy, dx in itertools.product(rng, rng) if torch.equal(torch.roll(x, (dy, dx), (-2, -1)), y)]
    assert len(found) == 1, found
    return found[0]


# ---------------------------------------------------------------- jitter_roll
def test_roll_zero_shift_is_the_identity(device):
    x = _batch(device)
    gen = _gen()
    state = gen.get_state()
    assert jitter_roll(x, 0, gen) is x
    assert jitter_roll(x, -3, gen) is x
    assert torch.equal(gen.get_state(), state), "no shift, no draw"


@pytest.mark.parametrize("max_shift", [1, 3, 8])
def test_roll_is_an_exact_invertible_shift_within_range(max_shift, device):
    x = _batch(device)
    gen = _gen(1)
    for _ in range(5):
        y = jitter_roll(x, max_shift, gen)
        assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
        dy, dx = _find_shift(x, y, max_shift)
        assert abs(dy) <= max_shift and abs(dx) <= max_shift
        assert torch.equal(torch.roll(y, (-dy, -dx), (-2, -1)), x)  # the inverse, bit for bit
        # one draw per batch: every tile moves by the same offset
        for i in range(x.shape[0]):
            assert torch.equal(y[i], torch.roll(x[i], (dy, dx), (-2, -1)))


def test_roll_draws_cover_the_range():
    x = torch.arange(5 * 7, dtype=torch.float32).view(1, 1, 5, 7)
    gen = _gen(2)
    shifts = [_find_shift(x, jitter_roll(x, 2, gen), 2) for _ in range(200)]
    assert {dy for dy, _ in shifts} == {-2, -1, 0, 1, 2}
    assert {dx for _, dx in shifts} == {-2, -1, 0, 1, 2}


def test_roll_gradient_is_rolled_back(device):
    x = _batch(device).requires_grad_(True)
    w = _batch(device, seed=5)
    y = jitter_roll(x, 4, _gen(3))
    dy, dx = _find_shift(x.detach(), y.detach(), 4)
    (y * w).sum().backward()
    assert torch.equal(x.grad, torch.roll(w, (-dy, -dx), (-2, -1)))


def test_roll_same_seed_same_draw(device):
    x = _batch(device)
    ga, gb = _gen(7), _gen(7)
    a = [jitter_roll(x, 6, ga) for _ in range(4)]
    b = [jitter_roll(x, 6, gb) for _ in range(4)]
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    # and the draws do change from step to step
    assert len({_find_shift(x, p, 6) for p in a}) > 1


# ---------------------------------------------------------------- random_affine
def test_affine_zero_settings_are_the_identity(device):
    x = _batch(device)
    gen = _gen()
    state = gen.get_state()
    assert random_affine(x, 0.0, 0.0, gen) is x
    assert random_affine(x, -0.1, 0.0, gen) is x
    assert torch.equal(gen.get_state(), state), "no transform, no draw"


def test_affine_without_zoom_or_turn_changes_nothing(device):
    # max_scale and max_degrees so small that the warp is the identity up to float rounding
    x = _batch(device)
    y = random_affine(x, 1e-7, 1e-7, _gen())
    assert y.shape == x.shape
    assert torch.allclose(y, x, atol=1e-4)


@pytest.mark.parametrize("shape", [(1, 3, 16, 16), (4, 3, 17, 23), (2, 1, 9, 31)])
def test_affine_keeps_shape_dtype_device_and_constants(shape, device):
    x = _batch(device, shape)
    y = random_affine(x, 0.2, 15.0, _gen(4))
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    assert not torch.allclose(y, x, atol=1e-3), "a real zoom/turn changes the tiles"
    # the reflected border leaves no holes: a constant batch stays constant
    c = torch.full(shape, 0.37, device=device)
    assert torch.allclose(random_affine(c, 0.2, 15.0, _gen(4)), c, atol=1e-6)


def test_affine_one_draw_per_batch(device):
    tile = _batch(device, (1, 3, 16, 20))
    y = random_affine(tile.expand(4, -1, -1, -1).contiguous(), 0.3, 20.0, _gen(5))
    for i in range(1, 4):
        assert torch.allclose(y[i], y[0], rtol=0, atol=0 if device.type == "cpu" else 1e-6)


def test_affine_same_seed_same_draw(device):
    x = _batch(device)
    ga, gb = _gen(6), _gen(6)
    a = [random_affine(x, 0.2, 10.0, ga) for _ in range(3)]
    b = [random_affine(x, 0.2, 10.0, gb) for _ in range(3)]
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not torch.allclose(a[0], a[1], atol=1e-4), "the draws change from step to step"


def test_affine_gradient_flows_back(device):
    x = _batch(device).requires_grad_(True)
    y = random_affine(x, 0.2, 15.0, _gen(8))
    y.pow(2).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    assert bool(torch.isfinite(x.grad).all()) and float(x.grad.abs().sum()) > 0
    # a warp moves mass around but, with a reflected border and a mild zoom, keeps about as much
    # gradient in as came out: d(sum y)/dx sums to the number of output pixels (bilinear weights sum to 1)
    x.grad = None
    random_affine(x, 0.2, 15.0, _gen(8)).sum().backward()
    assert float(x.grad.sum()) == pytest.approx(y.numel(), rel=1e-4)


def test_affine_gradcheck(device):
    if device.type == "mps":
        pytest.skip("MPS has no float64")
    x = _batch(device, (1, 2, 7, 8), dtype=torch.float64).requires_grad_(True)
    # a fresh generator per call: gradcheck evaluates the same warp many times
    assert torch.autograd.gradcheck(lambda t: random_affine(t, 0.15, 12.0, _gen(9)), (x,))


# ---------------------------------------------------------------- random_crop
def test_crop_whole_is_the_identity():
    x = _batch("cpu")
    assert random_crop(x, 1.0, _gen()) is x


def test_crop_is_a_window_of_the_batch_at_one_drawn_position():
    x = _batch("cpu", shape=(2, 3, 20, 30))
    crop = random_crop(x, 0.5, _gen(4))
    assert crop.shape == (2, 3, 10, 15)
    found = [(y, z) for y in range(11) for z in range(16) if torch.equal(x[..., y : y + 10, z : z + 15], crop)]
    assert len(found) == 1
    positions = {tuple(random_crop(x, 0.5, _gen(s)).flatten()[:3].tolist()) for s in range(20)}
    assert len(positions) > 5  # the position is drawn, not fixed


def test_crop_gradient_lands_on_the_cropped_pixels_only():
    x = _batch("cpu", shape=(1, 3, 16, 16)).requires_grad_()
    random_crop(x, 0.5, _gen(1)).sum().backward()
    assert int((x.grad != 0).sum()) == 3 * 8 * 8 and torch.all(x.grad[x.grad != 0] == 1)


def test_pad_is_a_grey_border_whose_gradient_is_the_tile_s():
    x = _batch("cpu", shape=(2, 3, 8, 10)).requires_grad_()
    padded = constant_pad(x, 3)
    assert padded.shape == (2, 3, 14, 16) and constant_pad(x, 0) is x
    assert torch.equal(padded[..., 3:11, 3:13], x) and torch.all(padded[..., :3, :] == 0.5)
    (padded * torch.arange(padded.numel()).reshape(padded.shape)).sum().backward()
    assert torch.equal(x.grad, torch.arange(padded.numel()).reshape(padded.shape)[..., 3:11, 3:13].float())


def test_pad_comes_first_and_crop_last_in_the_configured_transforms():
    from cnnvis import RenderConfig

    assert not any(isinstance(t, (Pad, RandomCrop)) for t in transforms_from_config(RenderConfig()))
    stack = transforms_from_config(RenderConfig(transform_crop=0.7, transform_pad=12))
    assert isinstance(stack[0], Pad) and stack[0].width == 12
    assert isinstance(stack[-1], RandomCrop) and stack[-1].fraction == 0.7
    out = apply_transforms(stack, _batch("cpu", shape=(2, 3, 20, 20)), _gen())
    assert out.shape == (2, 3, 31, 31)  # (20 + 2 * 12) * 0.7
