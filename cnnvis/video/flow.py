"""Dense optical flow between two frames (OpenCV), warping along it, and where it can be trusted.

Conventions. Images are (H, W, 3) float32 RGB in [0, 1] (or uint8). A flow ``f`` from frame
``a`` to frame ``b`` is float32 (H, W, 2) in pixels, (dx, dy) per pixel of ``a``:
``a[y, x] ~ b[y + dy, x + dx]``. To bring the previous frame's result onto the current frame
one needs the *backward* flow (current -> previous): ``warp(prev, flow(cur, prev))[y, x] =
prev[y + dy, x + dx]`` (Ruder et al. 2016, Sec. 3.1, warp the previous stylized frame "using
the optical flow from frame i to frame i-1").

The consistency check (:func:`reliable`) is the one of Ruder, Dosovitskiy and Brox 2016,
"Artistic style transfer for videos" (Sec. 3.2), after Sundaram, Brox and Keutzer 2010,
"Dense point trajectories by GPU-accelerated large displacement optical flow": a pixel is
unreliable where the forward and backward flows do not cancel (disocclusion), where the
backward flow changes abruptly (motion boundary), or where its source lies outside the
previous frame (the border a pan uncovers).
"""

from __future__ import annotations

import cv2
import numpy as np

from cnnvis.errors import InputError

FLOW_METHODS = ("dis", "farneback")

# Ruder et al. 2016, Sec. 3.2 (from Sundaram et al. 2010): disocclusion where
# |w~ + w^|^2 > 0.01 (|w~|^2 + |w^|^2) + 0.5, motion boundary where
# |grad u^|^2 + |grad v^|^2 > 0.01 |w^|^2 + 0.002 (w^ backward flow, w~ forward flow at x + w^(x)).
CONSISTENCY_RELATIVE, CONSISTENCY_ABSOLUTE = 0.01, 0.5
BOUNDARY_RELATIVE, BOUNDARY_ABSOLUTE = 0.01, 0.002


def to_gray8(img: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB float in [0, 1] or uint8 -> contiguous uint8 (H, W), the input DIS and
    Farneback take (an (H, W) uint8 image is returned as it is)."""
    if img.ndim == 2 and img.dtype == np.uint8:
        return np.ascontiguousarray(img)
    if img.dtype != np.uint8:
        img = (np.clip(img, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return np.ascontiguousarray(cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY))


def optical_flow(a: np.ndarray, b: np.ndarray, method: str = "dis") -> np.ndarray:
    """Dense flow from ``a`` to ``b`` (two (H, W, 3) frames of one size, or their :func:`to_gray8`): float32 (H, W, 2)
    (dx, dy) in pixels with ``a[y, x] ~ b[y + dy, x + dx]``.

    ``dis``: Dense Inverse Search (Kroeger et al. 2016, ``cv2.DISOpticalFlow``, medium preset):
    fast, accurate to a fraction of a pixel on textured regions, deterministic whatever the
    thread count. ``farneback``: Farneback 2003 polynomial expansion, smoother and slower.
    """
    if method not in FLOW_METHODS:
        raise InputError(f"unknown optical flow '{method}'; use {', '.join(FLOW_METHODS)} or none")
    if a.shape[:2] != b.shape[:2]:
        raise InputError(
            f"frames of different sizes {a.shape[1]}x{a.shape[0]} and {b.shape[1]}x{b.shape[0]}; "
            "optical flow needs one frame size"
        )
    ga, gb = to_gray8(a), to_gray8(b)
    if method == "dis":
        flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(ga, gb, None)
    else:
        # OpenCV's documented example parameters: pyramid 0.5 x 3 levels, 15 px window, 3 iterations, poly_n 5,
        # sigma 1.2.
        flow = cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    return np.ascontiguousarray(flow, dtype=np.float32)


def sample_map(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The absolute sampling positions (x + dx, y + dy) of a flow, as cv2.remap's two float32 maps."""
    h, w = flow.shape[:2]
    xs = np.arange(w, dtype=np.float32)[None, :] + flow[..., 0]
    ys = np.arange(h, dtype=np.float32)[:, None] + flow[..., 1]
    return xs, ys


def warp(img: np.ndarray, flow: np.ndarray, cubic: bool = False) -> np.ndarray:
    """``img`` (H, W, C) sampled along ``flow`` (H, W, 2): ``out[y, x] = img[y + dy, x + dx]``;
    positions outside take the nearest border pixel (:func:`reliable` marks them).

    Bilinear, or bicubic with ``cubic``: an image warped again every frame loses its fine detail
    under bilinear sampling (it averages neighbours at every sub-pixel shift: white noise keeps
    66% of its standard deviation after 10 warps by DIS's error on a 3-pixel pan, 96% bicubic).
    Bicubic can overshoot: clip images afterwards."""
    xs, ys = sample_map(flow)
    inter = cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR
    out = cv2.remap(np.ascontiguousarray(img), xs, ys, interpolation=inter, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(img.shape)


def reliable(forward: np.ndarray, backward: np.ndarray, motion_boundaries: bool = True) -> np.ndarray:
    """Where the backward flow can carry the previous frame onto the current one: bool (H, W).

    ``backward`` is the flow current -> previous (defined on the current frame), ``forward``
    previous -> current. False where the two do not cancel (the pixel was hidden in the previous
    frame), on motion boundaries (with ``motion_boundaries``), and where the source position
    falls outside the previous frame. Thresholds: :data:`CONSISTENCY_RELATIVE` and friends.
    """
    h, w = backward.shape[:2]
    fwd_at = warp(forward, backward)  # w~(x) = w(x + w^(x))
    total = fwd_at + backward
    ok = (total**2).sum(-1) <= CONSISTENCY_RELATIVE * (
        (fwd_at**2).sum(-1) + (backward**2).sum(-1)
    ) + CONSISTENCY_ABSOLUTE
    if motion_boundaries:
        du_y, du_x = np.gradient(backward[..., 0])
        dv_y, dv_x = np.gradient(backward[..., 1])
        ok &= du_x**2 + du_y**2 + dv_x**2 + dv_y**2 <= BOUNDARY_RELATIVE * (backward**2).sum(-1) + BOUNDARY_ABSOLUTE
    xs, ys = sample_map(backward)
    ok &= (xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)
    return ok
