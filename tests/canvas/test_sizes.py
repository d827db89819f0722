"""Size strings, size plans and float resizing."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from cnnvis import InputError
from cnnvis.canvas.sizes import _interpolate, check_plan, parse_size, resize, size_plan

BASE = (300, 400)


@pytest.mark.parametrize(
    "text,want",
    [
        ("x0.5", (150, 200)),
        ("x1", (300, 400)),
        ("x2", (600, 800)),
        ("x.25", (75, 100)),
        ("x1.5", (450, 600)),
        ("600x800", (600, 800)),
        (" 12x7 ", (12, 7)),
        (None, BASE),
        ("", BASE),
    ],
)
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
    assert size_plan(BASE, initial="10x20", final="30x60", num_sizes=3, spacing="linear") == [
        (10, 20),
        (20, 40),
        (30, 60),
    ]


@pytest.mark.parametrize("octaves,scale", [(1, 1.4), (4, 1.4), (5, 2.0), (3, 1.25)])
def test_size_plan_octaves(octaves, scale):
    plan = size_plan(BASE, final="x2", octaves=octaves, octave_scale=scale)
    assert len(plan) == octaves
    assert plan[-1] == (600, 800)
    for (h0, w0), (h1, w1) in zip(plan, plan[1:]):
        assert h1 / h0 == pytest.approx(scale, rel=0.02)
        assert w1 / w0 == pytest.approx(scale, rel=0.02)
    assert plan[0][0] == round(600 / scale ** (octaves - 1))


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        ({"octaves": 0}, "--octaves"),
        ({"octaves": 3, "octave_scale": 1.0}, "--octave-scale"),
        ({"num_sizes": 0}, "--num-sizes"),
        ({"num_sizes": 3, "initial": "x0.5", "spacing": "cubic"}, "'cubic'"),
    ],
)
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
def test_resize_keeps_values_outside_unit_range(size, device):
    x = torch.full((1, 3, 20, 16), 0.5, device=device)
    x[:, :, :10] = -0.5
    x[:, :, 10:, :8] = 1.7
    y = resize(x, size)
    assert y.shape == (1, 3, *size)
    assert y.dtype == torch.float32
    assert y.device == x.device
    assert float(y.min()) < -0.4
    assert float(y.max()) > 1.6


def test_resize_same_size_is_copy_and_float64_kept(device):
    if device.type == "mps":
        pytest.skip("MPS has no float64")
    x = torch.rand(1, 3, 8, 9, dtype=torch.float64, device=device)
    y = resize(x, (8, 9))
    assert torch.equal(x, y) and y.data_ptr() != x.data_ptr()
    z = resize(x, (16, 18))
    assert z.dtype == torch.float64 and z.shape == (1, 3, 16, 18)
    assert z.device == x.device


def test_resize_single_channel_and_constant_preserved(device):
    x = torch.full((1, 1, 7, 5), -3.25, device=device)
    y = resize(x, (14, 3))
    assert y.shape == (1, 1, 14, 3)
    assert torch.allclose(y, torch.full_like(y, -3.25))


def test_resize_down_uses_area_average(device):
    x = torch.zeros(1, 3, 4, 4, device=device)
    x[:, :, ::2, ::2] = 4.0  # a quarter of the pixels
    y = resize(x, (2, 2))
    assert torch.allclose(y, torch.ones_like(y))
    assert math.isclose(float(y.mean()), float(x.mean()), rel_tol=1e-6)


# ---------------------------------------------------------------- OpenCV on the CPU, F.interpolate elsewhere
def _resize_as_before(x: torch.Tensor, size, interpolation=None) -> torch.Tensor:
    """The CPU resize of earlier versions, verbatim: (1, C, H, W), OpenCV plane by plane."""
    h, w = size
    if interpolation is None:
        interpolation = cv2.INTER_CUBIC if h * w > x.shape[-2] * x.shape[-1] else cv2.INTER_AREA
    src = x[0].detach().to("cpu", torch.float32).contiguous()
    out = torch.empty(1, src.shape[0], h, w, dtype=torch.float32)
    for c in range(src.shape[0]):
        cv2.resize(src[c].numpy(), (w, h), dst=out[0, c].numpy(), interpolation=interpolation)
    return out.to(x.device, x.dtype)


@pytest.mark.parametrize(
    "size,interpolation",
    [
        ((37, 53), None),
        ((9, 7), None),
        ((20, 33), None),
        ((13, 40), None),
        ((37, 53), cv2.INTER_LINEAR),
        ((9, 7), cv2.INTER_LINEAR),
        ((30, 30), cv2.INTER_LANCZOS4),
        ((10, 8), cv2.INTER_NEAREST),
    ],
)
def test_resize_on_cpu_replays_earlier_versions_bit_for_bit(size, interpolation):
    x = torch.randn(1, 3, 20, 16, generator=torch.Generator().manual_seed(7)) * 2
    assert torch.equal(resize(x, size, interpolation), _resize_as_before(x, size, interpolation))


@pytest.mark.parametrize("size", [(37, 53), (9, 7)])
def test_resize_batch_resizes_each_item_alone(size, device):
    x = torch.randn(3, 2, 20, 16, generator=torch.Generator().manual_seed(8)).to(device)
    y = resize(x, size)
    assert y.shape == (3, 2, *size) and y.device == x.device and y.is_contiguous()
    for i in range(3):
        alone = resize(x[i : i + 1], size)
        if device.type == "cpu":
            assert torch.equal(y[i : i + 1], alone)
        else:
            assert torch.allclose(y[i : i + 1], alone, atol=1e-6)


def test_resize_does_not_track_gradients(device):
    x = torch.rand(2, 3, 10, 12, device=device, requires_grad=True)
    for size in [(15, 18), (5, 6), (7, 9)]:
        assert not resize(x, size).requires_grad


def _photo() -> torch.Tensor:
    """skimage's astronaut, (1, 3, 512, 512) float32 in [0, 1]."""
    data = pytest.importorskip("skimage.data")
    return torch.from_numpy(data.astronaut().astype(np.float32) / 255).permute(2, 0, 1)[None].contiguous()


# Measured on the photo (see resize's docstring): max / mean |F.interpolate - OpenCV|.
#   enlarge 1.4x  : 1.4e-5 / 2.8e-7  (bicubic is OpenCV's kernel: float rounding)
#   shrink 1/1.4  : 0.086  / 0.0020  (antialiased bilinear, a triangle, against OpenCV's box)
#   shrink 1/2    : 6e-8   / 8e-9    (area: the same box average)
#   INTER_LINEAR  : 2.0e-5 / 3.2e-7
# The bound on the mean, 1/255, is one 8-bit grey level: below it the two paths' pictures
# differ on average by less than the rounding step of the PNG/JPEG they are saved to. The
# measured 0.0020 (0.50/255) leaves a factor of 2 for other BLAS/OpenCV builds and GPU kernels;
# the rounding-only cases get bounds 10-100x above their measurements. (On white noise, which
# has no natural image's falling spectrum, the triangle and the box differ more: ~0.004 mean for
# 0.05-sigma noise, so the bound is for pictures, not for arbitrary tensors.)
PHOTO_CASES = [
    (1.4, None, 1e-6, 1e-4),
    (1 / 1.4, None, 1 / 255, 0.15),
    (0.5, None, 1e-6, 1e-5),
    (1.4, cv2.INTER_LINEAR, 1e-6, 1e-4),
    (1 / 1.4, cv2.INTER_LINEAR, 1e-6, 1e-4),
]
PHOTO_IDS = ["up1.4", "down1.4", "down2", "linear-up1.4", "linear-down1.4"]


def _assert_close_to_opencv(got, opencv, mean_bound, max_bound):
    diff = (got - opencv).abs()
    assert float(diff.mean()) < mean_bound, float(diff.mean())
    assert float(diff.max()) < max_bound, float(diff.max())
    # and the resized pictures are the same picture: no shift, no change of brightness
    assert abs(float(got.mean() - opencv.mean())) < 1e-3


@pytest.mark.parametrize("factor,interpolation,mean_bound,max_bound", PHOTO_CASES, ids=PHOTO_IDS)
def test_interpolate_close_to_opencv_on_a_photo(factor, interpolation, mean_bound, max_bound):
    img = _photo()
    size = (round(img.shape[-2] * factor), round(img.shape[-1] * factor))
    opencv = resize(img, size, interpolation)
    flag = interpolation if interpolation is not None else (cv2.INTER_CUBIC if factor > 1 else cv2.INTER_AREA)
    torch_cpu = _interpolate(img, size, flag)  # the non-CPU path, run on the CPU
    _assert_close_to_opencv(torch_cpu, opencv, mean_bound, max_bound)


@pytest.mark.parametrize("factor,interpolation,mean_bound,max_bound", PHOTO_CASES, ids=PHOTO_IDS)
def test_resize_on_device_matches_cpu(factor, interpolation, mean_bound, max_bound, device):
    img = _photo()
    size = (round(img.shape[-2] * factor), round(img.shape[-1] * factor))
    want = resize(img, size, interpolation)
    got = resize(img.to(device), size, interpolation)
    assert got.device.type == device.type and got.shape == want.shape and got.dtype == want.dtype
    got = got.cpu()
    if device.type == "cpu":
        assert torch.equal(got, want)
    else:
        _assert_close_to_opencv(got, want, mean_bound, max_bound)


def test_resize_flag_without_torch_counterpart_goes_through_opencv(device):
    x = torch.randn(1, 3, 20, 16, generator=torch.Generator().manual_seed(9))
    got = resize(x.to(device), (30, 30), cv2.INTER_LANCZOS4)
    assert got.device.type == device.type
    assert torch.equal(got.cpu(), resize(x, (30, 30), cv2.INTER_LANCZOS4))


def test_resize_rejects_other_ranks():
    with pytest.raises(ValueError, match="N, C, H, W"):
        resize(torch.rand(3, 8, 8), (4, 4))
