"""Size strings, size plans and float resizing."""

from __future__ import annotations

import math

import pytest
import torch

from cnnvis import InputError
from cnnvis.octaves import check_plan, parse_size, resize, size_plan

BASE = (300, 400)


@pytest.mark.parametrize("text,want", [
    ("x0.5", (150, 200)), ("x1", (300, 400)), ("x2", (600, 800)), ("x.25", (75, 100)), ("x1.5", (450, 600)),
    ("600x800", (600, 800)), (" 12x7 ", (12, 7)), (None, BASE), ("", BASE),
])
def test_parse_size(text, want):
    assert parse_size(text, BASE) == want


def test_parse_size_tiny_factor_stays_positive():
    assert parse_size("x0.0001", BASE) == (1, 1)


@pytest.mark.parametrize("text", ["12by7", "x", "600x", "x-1", "-5x5", "1.5x2", "abc", "x0", "x0.0", "3x4x5"])
def test_parse_size_rejects_malformed(text):
    with pytest.raises(InputError) as e:
        parse_size(text, BASE)
    assert f"'{text}'" in str(e.value)


def _monotone(seq):
    return all(a <= b for a, b in zip(seq, seq[1:]))


@pytest.mark.parametrize("spacing", ["geometric", "linear"])
def test_size_plan_spacings(spacing):
    plan = size_plan(BASE, initial="x0.25", final="x2", num_sizes=5, spacing=spacing)
    assert len(plan) == 5
    assert plan[0] == (75, 100)
    assert plan[-1] == (600, 800)
    assert _monotone([h for h, _ in plan]) and _monotone([w for _, w in plan])
    assert len(set(plan)) == 5


def test_size_plan_geometric_vs_linear_middle():
    geo = size_plan((100, 100), "x1", "x4", 3, "geometric")
    lin = size_plan((100, 100), "x1", "x4", 3, "linear")
    assert geo[1] == (200, 200)  # geometric mean of 100 and 400
    assert lin[1] == (250, 250)  # arithmetic mean


def test_size_plan_pixels_and_default():
    assert size_plan(BASE) == [BASE]
    assert size_plan(BASE, final="64x32") == [(64, 32)]
    assert size_plan(BASE, initial="10x20", final="30x60", num_sizes=3, spacing="linear") == [(10, 20), (20, 40), (30, 60)]


@pytest.mark.parametrize("octaves,scale", [(1, 1.4), (4, 1.4), (5, 2.0), (3, 1.25)])
def test_size_plan_octaves(octaves, scale):
    plan = size_plan(BASE, final="x2", octaves=octaves, octave_scale=scale)
    assert len(plan) == octaves
    assert plan[-1] == (600, 800)
    for (h0, w0), (h1, w1) in zip(plan, plan[1:]):
        assert h1 / h0 == pytest.approx(scale, rel=0.02)
        assert w1 / w0 == pytest.approx(scale, rel=0.02)
    assert plan[0][0] == round(600 / scale ** (octaves - 1))


@pytest.mark.parametrize("kwargs,needle", [
    ({"octaves": 0}, "--octaves"), ({"octaves": 3, "octave_scale": 1.0}, "--octave-scale"),
    ({"num_sizes": 0}, "--num-sizes"), ({"num_sizes": 3, "initial": "x0.5", "spacing": "cubic"}, "'cubic'"),
])
def test_size_plan_rejects_bad_settings(kwargs, needle):
    with pytest.raises(InputError, match=needle):
        size_plan(BASE, **kwargs)


def test_check_plan():
    check_plan([(32, 32), (64, 90)], 32, "m")
    with pytest.raises(InputError) as e:
        check_plan([(31, 64), (64, 64)], 32, "some-model")
    msg = str(e.value)
    assert "31x64" in msg and "32x32" in msg and "some-model" in msg
    with pytest.raises(InputError, match="64x20"):
        check_plan([(64, 64), (64, 20)], 32, "m")


@pytest.mark.parametrize("size", [(37, 53), (10, 12), (20, 16)])
def test_resize_keeps_values_outside_unit_range(size):
    x = torch.full((1, 3, 20, 16), 0.5)
    x[:, :, :10] = -0.5
    x[:, :, 10:, :8] = 1.7
    y = resize(x, size)
    assert y.shape == (1, 3, *size)
    assert y.dtype == torch.float32
    assert float(y.min()) < -0.4
    assert float(y.max()) > 1.6


def test_resize_same_size_is_copy_and_float64_kept():
    x = torch.rand(1, 3, 8, 9, dtype=torch.float64)
    y = resize(x, (8, 9))
    assert torch.equal(x, y) and y.data_ptr() != x.data_ptr()
    z = resize(x, (16, 18))
    assert z.dtype == torch.float64 and z.shape == (1, 3, 16, 18)


def test_resize_single_channel_and_constant_preserved():
    x = torch.full((1, 1, 7, 5), -3.25)
    y = resize(x, (14, 3))
    assert y.shape == (1, 1, 14, 3)
    assert torch.allclose(y, torch.full_like(y, -3.25))


def test_resize_down_uses_area_average():
    x = torch.zeros(1, 3, 4, 4)
    x[:, :, ::2, ::2] = 4.0  # a quarter of the pixels
    y = resize(x, (2, 2))
    assert torch.allclose(y, torch.ones_like(y))
    assert math.isclose(float(y.mean()), float(x.mean()), rel_tol=1e-6)
