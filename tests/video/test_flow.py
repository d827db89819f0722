"""Optical flow, warping and the forward-backward consistency check, on scenes whose true flow is known."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cnnvis.errors import InputError
from cnnvis.video.flow import optical_flow, reliable, to_gray8, warp


def textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    """float32 (h, w, 3) in [0, 1]: blurred noise, texture at every pixel for the flow to follow."""
    rng = np.random.default_rng(seed)
    x = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 2.0)
    return (x - x.min()) / (x.max() - x.min())


def pan(v: int = 3, h: int = 96, w: int = 128):
    """Two frames of a camera pan: the scene moves ``v`` pixels left, so frame1[y, x] = frame0[y, x + v]."""
    scene = textured(h, w + v)
    return scene[:, :w], scene[:, v : w + v]


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_flow_recovers_a_pan_within_a_pixel(method):
    f0, f1 = pan(3)
    backward = optical_flow(f1, f0, method)  # frame1 -> frame0: every pixel came from 3 px to its right
    inner = backward[8:-8, 8:-8]
    assert backward.shape == (96, 128, 2) and backward.dtype == np.float32
    assert np.abs(inner[..., 0] - 3).mean() < 0.5 and np.abs(inner[..., 1]).mean() < 0.5
    assert np.percentile(np.abs(inner - [3, 0]).max(-1), 90) < 1.0
    forward = optical_flow(f0, f1, method)
    assert np.abs(forward[8:-8, 8:-16, 0] + 3).mean() < 0.5


def test_warp_by_the_true_flow_reproduces_the_next_frame():
    f0, f1 = pan(3)
    true = np.zeros(f1.shape[:2] + (2,), np.float32)
    true[..., 0] = 3
    for cubic in (False, True):
        got = warp(f0, true, cubic=cubic)
        assert np.abs(got[:, :-3] - f1[:, :-3]).max() < 1e-5  # an integer shift: exact wherever the source is inside
    # and by a fractional flow: the half-way image lies between the neighbours
    half = np.zeros_like(true)
    half[..., 0] = 0.5
    mid = warp(f0, half)
    assert np.allclose(mid[:, :-1], (f0[:, :-1] + f0[:, 1:]) / 2, atol=1e-5)


def test_consistency_check_marks_the_border_a_pan_uncovers():
    f0, f1 = pan(4)
    ok = reliable(optical_flow(f0, f1), optical_flow(f1, f0))
    assert ok.dtype == np.bool_ and ok.shape == f1.shape[:2]
    assert not ok[:, -4:].any()  # those columns were outside frame 0
    assert ok[8:-8, 8:-12].mean() > 0.97


def test_consistency_check_marks_what_a_moving_object_uncovers():
    """A square moves 6 px right over a still background: the strip it uncovers has no source."""
    h, w, v = 96, 128, 6
    bg, obj = textured(h, w, seed=1), textured(32, 32, seed=2)
    f0, f1 = bg.copy(), bg.copy()
    f0[32:64, 40:72] = obj
    f1[32:64, 40 + v : 72 + v] = obj
    ok = reliable(optical_flow(f0, f1), optical_flow(f1, f0))
    uncovered = ok[36:60, 42 : 40 + v - 1]  # background now, the square's left edge a frame ago
    assert uncovered.mean() < 0.5
    assert ok[:, :24].mean() > 0.95 and ok[:, 96:].mean() > 0.95  # the still background far from it


def test_flow_bad_input():
    a = textured(32, 32)
    with pytest.raises(InputError, match="unknown optical flow 'raft'"):
        optical_flow(a, a, "raft")
    with pytest.raises(InputError, match="frames of different sizes"):
        optical_flow(a, textured(32, 40))


def test_to_gray8_from_float_and_uint8():
    a = textured(8, 8)
    g = to_gray8(a)
    assert g.dtype == np.uint8 and g.shape == (8, 8) and g.flags.c_contiguous
    assert np.array_equal(to_gray8((a * 255).round().astype(np.uint8)), g)
