"""The video recipe's frame-to-frame state: which frames remain, how a result becomes the next
start, the checkpoint state and back; no files, no model (a stand-in render)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from cnnvis.errors import InputError
from cnnvis.recipes.video import (
    VIDEO_STATE,
    FrameCursor,
    checkpoint_state,
    frame_pixels,
    remaining_frames,
)


class FakeRender:
    """What the cursor uses of a :class:`cnnvis.pipeline.loop.Render`: ``run``, ``param``, ``checkpoint``."""

    def __init__(self, start: np.ndarray):
        self.start, self.param, self.resumed_from = start, None, "not run"

    def run(self, callback=None, resume=None):
        self.resumed_from, self.param = resume, object()
        if callback is not None:
            callback(1)
        return torch.from_numpy(np.clip(self.start + 0.25, 0, 1)).permute(2, 0, 1)[None]

    def checkpoint(self) -> dict:
        return {"done": 3}


def _clip(n: int = 4) -> list[np.ndarray]:
    return [np.full((4, 5, 3), 40 * i, np.uint8) for i in range(n)]


def test_remaining_frames_skip_the_done_ones_but_keep_the_frame_before():
    got = list(remaining_frames(_clip(), 2))
    assert [i for i, _, _ in got] == [2, 3]
    index, frame, prev = got[0]
    assert frame.dtype == np.float32 and frame.shape == (4, 5, 3) and np.allclose(frame, 80 / 255)
    assert np.allclose(prev, 40 / 255)  # frame 1, decoded though not rendered: frame 2's start needs it
    assert list(remaining_frames(_clip(1), 0))[0][2] is None
    assert list(remaining_frames(_clip(2), 5)) == []


def test_each_result_becomes_the_next_start():
    seen = []

    def make_render(index, frame, prev_frame, prev_out):
        seen.append((index, None if prev_out is None else float(prev_out.mean())))
        return FakeRender(frame if prev_out is None else prev_out)

    cursor, steps = FrameCursor(), []
    for index, frame, prev_frame in remaining_frames(_clip(3), cursor.next):
        result = cursor.render_frame(make_render, index, frame, prev_frame, steps.append)
        assert cursor.next == index and cursor.index == index  # not moved on before the result is kept
        cursor.keep(result)
    assert seen == [(0, None), (1, 0.25), (2, 0.5)] and steps == [1, 1, 1]
    assert cursor.next == 3 and np.allclose(cursor.prev_out, 0.75) and cursor.prev_out.shape == (4, 5, 3)


def test_a_resumed_render_state_is_used_once():
    cursor = FrameCursor(next=1, render_state={"done": 5})
    renders = []

    def make_render(index, frame, prev_frame, prev_out):
        renders.append(FakeRender(frame))
        return renders[-1]

    for index, frame, prev_frame in remaining_frames(_clip(3), cursor.next):
        cursor.keep(cursor.render_frame(make_render, index, frame, prev_frame))
    assert [r.resumed_from for r in renders] == [{"done": 5}, None]


def test_mid_frame_state_only_inside_the_frame_to_keep_next():
    cursor = FrameCursor(next=2)
    assert cursor.mid_frame_state(2) is None  # no render yet
    frame = np.zeros((4, 5, 3), np.float32)
    cursor.render, cursor.index = FakeRender(frame), 2
    assert cursor.mid_frame_state(2) is None  # before its parameters exist
    result = cursor.render_frame(lambda *a: FakeRender(frame), 2, frame, None)
    assert cursor.mid_frame_state(2) == {"done": 3}  # stopped inside frame 2: its state goes on
    cursor.keep(result)
    assert cursor.mid_frame_state(3) is None  # between frames: frame 2's state must not start frame 3


def test_checkpoint_state_round_trips_bit_for_bit():
    prev = np.random.default_rng(0).random((4, 5, 3)).astype(np.float64)
    state = checkpoint_state(3, prev, {"segments": 1}, {"done": 2})
    assert state[VIDEO_STATE] == 1 and state["prev_out"].dtype == torch.float32
    cursor = FrameCursor.resumed(state)
    assert (cursor.next, cursor.render_state, cursor.output_state) == (3, {"done": 2}, {"segments": 1})
    assert np.array_equal(cursor.prev_out, prev.astype(np.float32))
    assert FrameCursor.resumed(checkpoint_state(0, None, {})).prev_out is None
    assert FrameCursor.resumed(None) == FrameCursor()
    with pytest.raises(InputError, match="an image render's, not a video run's"):
        FrameCursor.resumed({"next": 1})


def test_frame_pixels_round_to_8_bits():
    result = np.array([[[0.0, 0.5, 1.0]]], np.float32)
    assert frame_pixels(result).tolist() == [[[0, 128, 255]]] and frame_pixels(result).dtype == np.uint8


def test_importing_the_recipe_loads_no_torch():
    """The CLI imports it to build --help (the commands' video defaults): torch waits for a render."""
    code = "import sys, cnnvis.recipes.video; assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
