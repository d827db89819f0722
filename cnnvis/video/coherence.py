"""The start image of a video frame: the previous result carried onto it, so the video holds still.

Frame t is rendered (dreamed, inverted) from a start image. Started afresh from its own pixels
each frame, a dream invents new patterns every frame and the video flickers. pytorch-deepdream
(and this package before issue 13) start from a constant blend of the previous result and the
new frame, ``blend * prev_out + (1 - blend) * frame``: still regions hold, but on motion the
previous dream sits where the content *was*, so it smears and ghosts.

Flow-guided coherence (Ruder, Dosovitskiy and Brox 2016, "Artistic style transfer for videos",
Sec. 3.1-3.2, which initializes frame t with the previous stylized frame warped by optical flow;
the flow-warped deepdream scripts, e.g. samim23/DeepDreamAnim's ``--flow``, do the same for
dreams, where graphific/DeepDreamVideo blends by a constant) moves the previous result along the
motion first:

1. the flow between the consecutive *input* frames, both ways (:func:`cnnvis.video.flow.optical_flow`);
2. the previous output warped by the backward flow onto frame t;
3. a mask of the pixels where that warp can be trusted (forward-backward consistency, motion
   boundaries, the border a pan uncovers; :func:`cnnvis.video.flow.reliable`), its edge feathered
   so the start has no hard seam;
4. ``start = fallback + blend * mask * (warped - fallback)``: the warped previous output where the
   flow is reliable, weighted by ``blend``, and the fallback (the new frame for a dream) where
   it is not;
5. during the render, Ruder et al.'s short-term temporal loss ``temporal * sum(mask * (x - warped)^2)``
   (:class:`cnnvis.video.temporal.TemporalPenalty`), which a dream needs even more than a style
   transfer: the start alone is not enough, since a dream amplifies tiny differences into new
   patterns every frame, on still regions too.

Every frame stays an ordinary render (any objective, prior or preset), and the run resumable
frame by frame.

The flags are declared here once (:class:`VideoOptions`, the settings group ``video``); what an
omitted one means is data each command passes in, a :class:`CoherenceDefaults`
(:mod:`cnnvis.recipes.video` declares the dream's and the inversion's), so this module knows no command.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from cnnvis.config import Options, group, setting
from cnnvis.errors import InputError
from cnnvis.video.flow import FLOW_METHODS, optical_flow, reliable, to_gray8, warp

COHERENCE_METHODS = (*FLOW_METHODS, "none")
DEFAULT_FLOW = "dis"
FEATHER_SIGMA = 1.0  # pixels: the mask's edge is softened inside the reliable region


def check_blend(blend: float) -> float:
    """``blend`` as a float in [0, 1]; InputError otherwise."""
    b = float(blend)
    if not 0.0 <= b <= 1.0:
        raise InputError(
            f"--blend {blend} is outside [0, 1]; use e.g. --blend 0.85 (1 = all previous output, 0 = all new frame)"
        )
    return b


def check_method(method: str) -> str:
    """``method`` if it is one of :data:`COHERENCE_METHODS`; InputError otherwise."""
    if method not in COHERENCE_METHODS:
        raise InputError(f"unknown --flow '{method}'; use {', '.join(COHERENCE_METHODS)}")
    return method


def check_temporal(weight: float) -> float:
    """``weight`` as a float >= 0; InputError otherwise."""
    w = float(weight)
    if not w >= 0:
        raise InputError(f"--temporal-weight {weight} is negative; use 0 (off) or more, e.g. 10")
    return w


@dataclass(frozen=True)
class CoherenceDefaults:
    """What ``--flow``, ``--blend`` and ``--temporal-weight`` mean when they are not given: one
    command's video defaults, as data (the commands declare theirs, e.g.
    :data:`cnnvis.recipes.video.DREAM_COHERENCE`).

    Args:
        blend: in [0, 1], the weight of the warped previous result in a frame's start, with a flow.
        temporal: >= 0, the weight of the temporal loss with a flow. With ``--flow none`` it is
            always 0: the loss holds pixels along the flow, and there is none.
        constant_blend: in [0, 1], the blend with ``--flow none`` (None: ``blend``).
        flow: the method without ``--flow``, one of :data:`COHERENCE_METHODS`.
    """

    blend: float
    temporal: float
    constant_blend: float | None = None
    flow: str = DEFAULT_FLOW

    def __post_init__(self):
        check_method(self.flow)
        check_blend(self.blend_for("none"))
        check_blend(self.blend)
        check_temporal(self.temporal)

    def blend_for(self, method: str) -> float:
        """The default ``--blend`` under ``method``."""
        return self.constant_blend if method == "none" and self.constant_blend is not None else self.blend

    def temporal_for(self, method: str) -> float:
        """The default ``--temporal-weight`` under ``method`` (0 without a flow)."""
        return 0.0 if method == "none" else self.temporal


def default_texts(defaults: CoherenceDefaults) -> dict[str, str]:
    """--help's default of each video option (:class:`VideoOptions` field name -> text) under
    ``defaults``, e.g. ``{"flow": "dis", "blend": "0.85; 0.5 with --flow none", "temporal": "1"}``."""

    def text(of) -> str:
        base, other = of(defaults.flow), of("none" if defaults.flow != "none" else DEFAULT_FLOW)
        if base == other:
            return f"{base:g}"
        cond = "--flow none" if defaults.flow != "none" else f"--flow {' or '.join(FLOW_METHODS)}"
        return f"{base:g}; {other:g} with {cond}"

    return {"flow": defaults.flow, "blend": text(defaults.blend_for), "temporal": text(defaults.temporal_for)}


@group("video")
class VideoOptions(Options):
    """The temporal coherence of a video input, as flags (the same on every command that renders
    videos). Each defaults to None: the command's :class:`CoherenceDefaults` then apply
    (:meth:`coherence`), and a command can refuse them for an image input."""

    flow: str | None = setting(
        None,
        "Video input: carry each frame's result to the next along the optical flow (OpenCV DIS or Farneback), "
        "trusted only where forward and backward flow agree; none: blend the previous result by a constant.",
        choices=COHERENCE_METHODS,
        default_text=DEFAULT_FLOW,
    )
    blend: float | None = setting(
        None,
        "Video input: weight of the previous frame's (warped) result in a frame's start, in [0, 1]; "
        "the rest is the new frame.",
        low=0,
        high=1,
        default_text="the command's",
    )
    temporal: float | None = setting(
        None,
        "Video input with a flow: weight of the temporal loss that holds each pixel the flow carries near the "
        "previous result (Ruder et al. 2016); 0 = the start only.",
        low=0,
        flag="--temporal-weight",
        default_text="the command's",
    )

    def given(self) -> bool:
        """Whether any video option was given (an image input refuses them)."""
        return any(getattr(self, s.name) is not None for s in self.settings())

    def coherence(self, defaults: CoherenceDefaults) -> Coherence:
        """The :class:`Coherence` of these options, ``defaults`` filling what was not given."""
        return from_flags(self.flow, self.blend, self.temporal, defaults)


def from_flags(flow: str | None, blend: float | None, temporal: float | None, defaults: CoherenceDefaults) -> Coherence:
    """The :class:`Coherence` of ``--flow``, ``--blend`` and ``--temporal-weight``; None takes the
    command's default from ``defaults`` (its blend and temporal weight depend on the method)."""
    method = check_method(flow or defaults.flow)
    if temporal is not None and temporal > 0 and method == "none":
        raise InputError(
            f"--temporal-weight {temporal} holds the result along the optical flow; give --flow dis or farneback, "
            "or drop it"
        )
    blend = defaults.blend_for(method) if blend is None else blend
    temporal = defaults.temporal_for(method) if temporal is None else temporal
    return Coherence(method, check_blend(blend), check_temporal(temporal))


def feather(mask: np.ndarray, sigma: float = FEATHER_SIGMA) -> np.ndarray:
    """bool (H, W) -> float32 (H, W) in [0, 1]: blurred by ``sigma`` pixels, but never above the
    hard mask, so unreliable pixels stay 0 and the ramp lies on the reliable side."""
    hard = mask.astype(np.float32)
    if sigma <= 0:
        return hard
    return np.minimum(cv2.GaussianBlur(hard, (0, 0), sigma), hard)


def _fit(img: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """``img`` (H, W, C) resized to ``hw`` when it differs (a render larger than its frame)."""
    if img.shape[:2] == tuple(hw):
        return img
    inter = cv2.INTER_AREA if img.shape[0] > hw[0] else cv2.INTER_LINEAR
    return cv2.resize(img, (hw[1], hw[0]), interpolation=inter).reshape(hw[0], hw[1], img.shape[2])


@dataclass(frozen=True)
class Coherence:
    """How frame t starts from frame t-1's result.

    Args:
        method: ``dis`` or ``farneback`` (flow-guided, see the module) or ``none`` (the constant
            blend of pytorch-deepdream).
        blend: in [0, 1], the weight of the (warped) previous output against the fallback.
        temporal: the weight of the temporal loss during the render (0: the start alone).
    """

    method: str = "dis"
    blend: float = 0.85
    temporal: float = 0.0

    def __post_init__(self):
        check_method(self.method)
        check_blend(self.blend)
        check_temporal(self.temporal)

    def penalties(self, warped: np.ndarray | None, mask: np.ndarray | None) -> list:
        """The render's extra penalties for a frame whose previous result was carried (:meth:`start_and_carry`):
        the temporal loss, or nothing."""
        from cnnvis.video.temporal import TemporalPenalty

        if warped is None or mask is None or not self.temporal:
            return []
        return [TemporalPenalty(self.temporal, warped, mask)]

    def carry(self, prev_frame: np.ndarray, frame: np.ndarray, prev_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The previous result carried onto ``frame`` along the optical flow, and where to trust it.

        Args:
            prev_frame, frame: input frames t-1 and t, (H, W, 3) float32 in [0, 1].
            prev_out: the result of frame t-1, (H', W', 3) float32 in [0, 1] (resized to (H, W)).

        Returns:
            ``(warped, mask)``: (H, W, 3) float32 in [0, 1], and float32 (H, W) in [0, 1] (1: reliable).
        """
        prev = _fit(np.asarray(prev_out, np.float32), frame.shape[:2])
        gray, prev_gray = to_gray8(frame), to_gray8(prev_frame)  # once each, for both flows
        backward = optical_flow(gray, prev_gray, self.method)  # t -> t-1: where each pixel of t was
        forward = optical_flow(prev_gray, gray, self.method)
        mask = feather(reliable(forward, backward))
        warped = np.clip(
            warp(prev, backward, cubic=True), 0.0, 1.0
        )  # bicubic: the dream's detail survives being carried frame after frame
        return warped.astype(np.float32, copy=False), mask

    def start(
        self,
        prev_frame: np.ndarray | None,
        frame: np.ndarray,
        prev_out: np.ndarray | None,
        fallback: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The start image of ``frame`` and the reliability mask used.

        Args:
            prev_frame, frame: input frames t-1 and t, (H, W, 3) float32 in [0, 1] (``prev_frame``
                None for the first frame).
            prev_out: the result of frame t-1, (H', W', 3) float32 in [0, 1], resized to (H, W)
                if it differs; None for the first frame.
            fallback: what a pixel starts from where nothing is carried, (H, W, 3); default ``frame``.

        Returns:
            ``(start, mask)``: start (H, W, 3) float32 in [0, 1]; mask float32 (H, W) in [0, 1]
            (1 = the warped previous output is trusted), None for the first frame or ``none``.
        """
        return self.start_and_carry(prev_frame, frame, prev_out, fallback)[:2]

    def start_and_carry(self, prev_frame, frame, prev_out, fallback=None):
        """:meth:`start`'s ``(start, mask)`` and the warped previous result, (H, W, 3) float32 in [0, 1]
        (None where :meth:`start`'s mask is None)."""
        base = frame if fallback is None else fallback
        if prev_out is None or prev_frame is None:
            return np.ascontiguousarray(base, dtype=np.float32), None, None
        if self.method == "none":
            prev = _fit(np.asarray(prev_out, np.float32), frame.shape[:2])
            return (self.blend * prev + (1.0 - self.blend) * base).astype(np.float32), None, None
        warped, mask = self.carry(prev_frame, frame, prev_out)
        start = base + (self.blend * mask)[..., None] * (warped - base)  # a convex combination: stays in [0, 1]
        return start.astype(np.float32, copy=False), mask, warped
