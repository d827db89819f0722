"""The video recipe: a clip rendered frame by frame, each frame started from the previous result.

What a video run needs between frames, as data and pure steps (:mod:`cnnvis.recipes.frames`
adds reading and writing the files, and stopping):

- each command's video defaults, :data:`DREAM_COHERENCE` and :data:`INVERT_COHERENCE`
  (:class:`cnnvis.video.coherence.CoherenceDefaults`);
- :class:`FrameCursor`: where a run stands (the next frame, the previous result, the render of the
  frame in progress) and how one frame's result becomes the next frame's start;
- :func:`remaining_frames`: which frames of a clip remain, each with the input frame before it;
- :func:`checkpoint_state` / :meth:`FrameCursor.resumed`: the cursor as a checkpoint's state and back,
  so that a resumed run renders the same frames bit for bit (on CPU).

A notebook renders a clip frame by frame (``make_render`` as in :class:`cnnvis.recipes.frames.FrameJob`)::

    cursor = FrameCursor()
    with VideoReader(path) as reader:
        for index, frame, prev_frame in remaining_frames(reader, cursor.next):
            result = cursor.render_frame(make_render, index, frame, prev_frame)
            frames.append(frame_pixels(result))
            cursor.keep(result)

Nothing here prints or writes; torch loads on first use, not at import (``--help`` reads this).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnvis.errors import InputError
from cnnvis.video.coherence import CoherenceDefaults

# A dream: the blend of pytorch-deepdream's videos (0.85) along the flow, the constant blend of
# cnnvis before issue 13 (0.5) without one. The temporal loss is per pixel, next to an objective
# gradient normalized to a mean magnitude of 1: 10 keeps carried pixels within a few grey levels
# of the previous dream and lets the dream grow as fast as the constant blend's (bench/video.py).
DREAM_COHERENCE = CoherenceDefaults(blend=0.85, temporal=10.0, constant_blend=0.5)
# An inversion starts from the previous reconstruction (icnn's movies), new pixels from the init;
# its loss is not normalized as a dream's is, so no temporal loss by default: the start alone, as icnn.
INVERT_COHERENCE = CoherenceDefaults(blend=1.0, temporal=0.0)

VIDEO_STATE = "video"  # the key that marks a checkpoint's state as a video run's


@dataclass
class FrameCursor:
    """Where a video run stands: between frames, or inside frame :attr:`index`.

    Attributes:
        next: the index of the next frame to render (from 0), = the frames already kept.
        prev_out: the result of frame ``next - 1``, (H, W, 3) float32 in [0, 1]; None before the first.
        render_state: the render state (``Render.checkpoint()``) to resume frame ``next`` from the
            step it reached; None: the frame starts afresh.
        output_state: the writer's state to resume (opaque here; :meth:`cnnvis.io.segments.VideoOutput.state`).
        render: the render of frame :attr:`index` (a :class:`cnnvis.pipeline.loop.Render`), kept after
            the frame for its config; None until the first frame's render exists.
        index: the frame :attr:`render` belongs to.
    """

    next: int = 0
    prev_out: np.ndarray | None = None
    render_state: dict | None = None
    output_state: dict | None = None
    render: Any = None
    index: int | None = None

    @classmethod
    def resumed(cls, state: Mapping | None) -> FrameCursor:
        """The cursor a checkpoint's state (:func:`checkpoint_state`) resumes; a fresh one for None.
        InputError for the state of an image render."""
        if state is None:
            return cls()
        if VIDEO_STATE not in state:
            raise InputError(
                "the checkpoint is an image render's, not a video run's; resume it with the command that made it"
            )
        prev = state["prev_out"]
        return cls(
            next=int(state["next"]),
            prev_out=None if prev is None else prev.numpy(),
            render_state=state.get("render"),
            output_state=state["output"],
        )

    def render_frame(
        self,
        make_render: Callable,
        index: int,
        frame: np.ndarray,
        prev_frame: np.ndarray | None,
        on_step: Callable | None = None,
    ) -> np.ndarray:
        """Build and run frame ``index``'s render; its result, (H', W', 3) float32 in [0, 1].

        ``make_render(index, frame, prev_frame, prev_out)`` builds it from the input frames
        ((H, W, 3) float32 in [0, 1]) and :attr:`prev_out`; ``on_step`` is the render's progress
        callback. The cursor does not move on until :meth:`keep`: the caller keeps the result first.
        """
        from cnnvis.recipes.recon import to_hwc

        self.render = None  # until this frame's render exists, a render state would be the last frame's
        self.index = index
        self.render = make_render(index, frame, prev_frame, self.prev_out)
        result = to_hwc(self.render.run(on_step, resume=self.render_state))
        self.render_state = None  # spent: the next frame starts afresh
        return result

    def keep(self, result: np.ndarray) -> None:
        """Move on past the frame whose ``result`` was kept: it becomes the next frame's start."""
        self.prev_out = result
        self.next += 1

    def mid_frame_state(self, kept: int) -> dict | None:
        """The render state to resume the frame in progress from the step it reached, when ``kept``
        (the frames kept so far) says that frame is the next one to keep; None otherwise (between
        frames, or before its render has parameters)."""
        if self.render is None or self.render.param is None or kept != self.index:
            return None
        return self.render.checkpoint()


def remaining_frames(frames: Iterable[np.ndarray], first: int) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
    """``(index, frame, prev_frame)`` for each frame from index ``first`` on.

    ``frames``: the clip's decoded frames (any layout :func:`cnnvis.io.images.to_float_rgb` reads);
    ``frame`` and ``prev_frame`` (the input frame before it, None for frame 0) are (H, W, 3) float32
    in [0, 1]. The frames before ``first`` are decoded still: frame ``first``'s start needs the one
    before it, and a stream has no random access.
    """
    from cnnvis.io.images import to_float_rgb

    prev_frame = None
    for index, raw in enumerate(frames):
        frame = to_float_rgb(raw)
        if index >= first:
            yield index, frame, prev_frame
        prev_frame = frame


def frame_pixels(result: np.ndarray) -> np.ndarray:
    """A result, (H, W, 3) float32 in [0, 1], as the 8-bit frame written: (H, W, 3) uint8."""
    return (result * 255.0).round().astype(np.uint8)


def checkpoint_state(
    next_frame: int, prev_out: np.ndarray | None, output_state: dict, render_state: dict | None = None
) -> dict:
    """A video run's state for a checkpoint (:meth:`FrameCursor.resumed` reads it back).

    Args:
        next_frame: the frame to go on from (= the frames kept).
        prev_out: the result of frame ``next_frame - 1``, (H, W, 3) in [0, 1], kept in float32 so
            the next start is bit-exact; None before the first frame.
        output_state: the writer's state.
        render_state: frame ``next_frame``'s render state, to go on from the step it reached.
    """
    import torch

    return {
        VIDEO_STATE: 1,
        "next": next_frame,
        "output": output_state,
        "render": render_state,
        "prev_out": None if prev_out is None else torch.from_numpy(np.ascontiguousarray(prev_out, np.float32).copy()),
    }
