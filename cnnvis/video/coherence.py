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
   it is not.

Unlike Ruder et al. there is no temporal loss term during the optimization: the start alone
carries the result, which keeps every frame an ordinary render (any objective, prior or
preset) and the run resumable frame by frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from cnnvis.errors import InputError
from cnnvis.video.flow import FLOW_METHODS, optical_flow, reliable, to_gray8, warp

COHERENCE_METHODS = (*FLOW_METHODS, "none")
DEFAULT_FLOW = "dis"
# --blend defaults: the weight of the (warped) previous result in a frame's start.
DREAM_BLEND = 0.85  # flow-guided dream: pytorch-deepdream's video blend
CONSTANT_BLEND = 0.5  # dream with --flow none: the constant blend of cnnvis before issue 13
INVERT_BLEND = 1.0  # invert: start from the previous reconstruction (icnn's movies), new pixels from the init
FEATHER_SIGMA = 1.0  # pixels: the mask's edge is softened inside the reliable region


def check_blend(blend: float) -> float:
    """``blend`` as a float in [0, 1]; InputError otherwise."""
    b = float(blend)
    if not 0.0 <= b <= 1.0:
        raise InputError(f"--blend {blend} is outside [0, 1]; use e.g. --blend 0.85 (1 = all previous output, 0 = all new frame)")
    return b


def check_method(method: str) -> str:
    if method not in COHERENCE_METHODS:
        raise InputError(f"unknown --flow '{method}'; use {', '.join(COHERENCE_METHODS)}")
    return method


def from_flags(flow: str | None, blend: float | None, command: str = "dream") -> Coherence:
    """The :class:`Coherence` of ``--flow`` and ``--blend`` (None: the command's default:
    :data:`DREAM_BLEND` with a flow, :data:`CONSTANT_BLEND` with ``none``, :data:`INVERT_BLEND`
    for ``invert``)."""
    method = check_method(flow or DEFAULT_FLOW)
    if blend is None:
        blend = INVERT_BLEND if command == "invert" else (CONSTANT_BLEND if method == "none" else DREAM_BLEND)
    return Coherence(method, check_blend(blend))


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
    """

    method: str = "dis"
    blend: float = 0.85

    def __post_init__(self):
        check_method(self.method)
        check_blend(self.blend)

    def start(self, prev_frame: np.ndarray | None, frame: np.ndarray, prev_out: np.ndarray | None,
              fallback: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
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
        base = frame if fallback is None else fallback
        if prev_out is None or prev_frame is None:
            return np.ascontiguousarray(base, dtype=np.float32), None
        hw = frame.shape[:2]
        prev = _fit(np.asarray(prev_out, np.float32), hw)
        if self.method == "none":
            return (self.blend * prev + (1.0 - self.blend) * base).astype(np.float32), None
        gray, prev_gray = to_gray8(frame), to_gray8(prev_frame)  # once each, for both flows
        backward = optical_flow(gray, prev_gray, self.method)  # t -> t-1: where each pixel of t was
        forward = optical_flow(prev_gray, gray, self.method)
        mask = feather(reliable(forward, backward))
        warped = np.clip(warp(prev, backward, cubic=True), 0.0, 1.0)  # bicubic: the dream's detail survives being carried frame after frame
        start = base + (self.blend * mask)[..., None] * (warped - base)  # a convex combination: stays in [0, 1]
        return start.astype(np.float32, copy=False), mask
