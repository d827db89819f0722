"""Size plans (cnn-vis's initial/final/num-sizes and the octave form) and float resizing.

Resizing always happens in float, never through uint8, so values outside [0, 1] that the
optimizer produced survive the change of scale: through OpenCV on the CPU, through
``torch.nn.functional.interpolate`` on other devices (see :func:`resize`).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from cnnvis.config import SIZE_TEXT, check_size_text
from cnnvis.errors import InputError

Size = tuple[int, int]  # (height, width), pixels


def parse_size(text: str | None, base: Size) -> Size:
    """Parse ``xF`` (a multiple of ``base``) or ``HxW`` (pixels); ``None`` means ``base``."""
    if text is None or text == "":
        return base
    check_size_text(text)
    m = SIZE_TEXT.match(str(text))
    if m.group("f") is not None:
        f = float(m.group("f"))
        if f <= 0:
            raise InputError(f"size factor in '{text}' must be positive; e.g. x0.5")
        return max(1, round(base[0] * f)), max(1, round(base[1] * f))
    return int(m.group("h")), int(m.group("w"))


def size_plan(
    base: Size,
    initial: str | None = None,
    final: str | None = None,
    num_sizes: int = 1,
    spacing: str = "geometric",
    octaves: int | None = None,
    octave_scale: float = 1.4,
) -> list[Size]:
    """The sequence of canvas sizes, smallest first.

    cnn-vis form: ``num_sizes`` sizes from ``initial`` to ``final`` (both ``xF`` or ``HxW``,
    relative to ``base``), spaced ``geometric`` or ``linear``.
    Octave form (``octaves`` given): ``octaves`` sizes ending at ``final``, each ``octave_scale``
    times the previous (Google's deepdream).
    """
    end = parse_size(final, base)
    if octaves is not None:
        if octaves < 1:
            raise InputError(f"--octaves must be at least 1, got {octaves}")
        if not octave_scale > 1:
            raise InputError(f"--octave-scale must be greater than 1, got {octave_scale}")
        return [
            (max(1, round(end[0] / octave_scale**k)), max(1, round(end[1] / octave_scale**k)))
            for k in range(octaves - 1, -1, -1)
        ]
    start = parse_size(initial, base)
    if num_sizes < 1:
        raise InputError(f"--num-sizes must be at least 1, got {num_sizes}")
    if num_sizes == 1:
        return [start] if initial is not None or final is None else [end]
    if spacing == "geometric":
        hs = np.geomspace(start[0], end[0], num_sizes)
        ws = np.geomspace(start[1], end[1], num_sizes)
    elif spacing == "linear":
        hs = np.linspace(start[0], end[0], num_sizes)
        ws = np.linspace(start[1], end[1], num_sizes)
    else:
        raise InputError(f"unknown size spacing '{spacing}'; use geometric or linear")
    return [(int(round(h)), int(round(w))) for h, w in zip(hs, ws)]


def check_plan(plan: list[Size], min_size: int, model_name: str) -> None:
    """Every size must be at least the model's minimum input on both sides."""
    for h, w in plan:
        if h < min_size or w < min_size:
            raise InputError(
                f"size {h}x{w} is below the minimum input {min_size}x{min_size} of {model_name}; "
                "raise --initial-size / --final-size or use fewer octaves"
            )


def resize(x: torch.Tensor, size: Size, interpolation: int | None = None) -> torch.Tensor:
    """Resize (N, C, H, W) float to a contiguous (N, C, h, w) of ``x``'s dtype on ``x``'s device.

    Bicubic when enlarging, area when shrinking; no value is clipped. ``interpolation`` may
    name an OpenCV flag instead (the optimizer state is resized with ``cv2.INTER_LINEAR``).

    On the CPU this is OpenCV in float32, item by item and plane by plane, straight into the
    output tensor, so the only large allocation is the result itself (at 4096x4096 an HWC round
    trip would add two more canvas-sized copies). Its numbers are those of earlier versions, bit
    for bit, so old runs replay identically.

    On any other device (cuda, mps) it is ``torch.nn.functional.interpolate`` on that device,
    with no round trip through host memory: ``bicubic`` when enlarging; when shrinking, ``area``
    if both sides shrink by whole numbers (then it is OpenCV's box average, to float rounding),
    else ``bilinear`` with ``antialias=True`` (a triangle filter as wide as the reduction, close
    to OpenCV's box-shaped area average); plain ``bilinear`` for ``cv2.INTER_LINEAR``, ``bicubic``
    for ``cv2.INTER_CUBIC``, ``nearest`` / ``nearest-exact`` for ``cv2.INTER_NEAREST`` /
    ``cv2.INTER_NEAREST_EXACT``. Flags with no such counterpart (e.g. ``cv2.INTER_LANCZOS4``),
    and operations a device's torch does not implement, go through OpenCV on the CPU instead.

    How far apart the two are, measured on a natural photo (``skimage.data.astronaut()``,
    512x512 RGB scaled to [0, 1], float32, F.interpolate run on the CPU; see
    ``tests/canvas/test_sizes.py``), as max / mean ``|difference|`` per value:

    - enlarging 1.4x (to 717x717): 1.4e-5 / 2.8e-7, float rounding only: torch's plain bicubic
      is OpenCV's (Keys kernel, a = -0.75, half-pixel centres, replicated border). Enlarging is
      *not* antialiased: torch's antialiased bicubic switches to PIL's kernel (a = -0.5) even
      when enlarging, which would differ by 0.057 / 0.0017 for no gain in quality.
    - shrinking 1/1.4 (to 366x366): 0.086 / 0.0020 (half an 8-bit grey level on average; the
      maximum sits on the sharpest edges, where a triangle and a box filter differ most).
      Alternatives are further from OpenCV's area average: plain bilinear 0.157 / 0.0029,
      antialiased bicubic 0.076 / 0.0028, torch's ``area`` mode (a different box for
      non-integer factors) 0.242 / 0.0063.
    - shrinking 1/2 (to 256x256, ``area``): 6e-8 / 8e-9, float rounding only.
    - ``cv2.INTER_LINEAR`` against plain bilinear: float rounding only (2.0e-5 / 3.2e-7 when
      shrinking 1/1.4).
    """
    h, w = size
    if tuple(x.shape[-2:]) == (h, w):
        return x.clone()
    if x.dim() != 4:
        raise ValueError(f"resize takes (N, C, H, W), got shape {tuple(x.shape)}")
    enlarge = h * w > x.shape[-2] * x.shape[-1]
    if interpolation is None:
        interpolation = cv2.INTER_CUBIC if enlarge else cv2.INTER_AREA
    if x.device.type != "cpu":
        out = _interpolate(x, (h, w), interpolation)
        if out is not None:
            return out
    src = x.detach().to("cpu", torch.float32).contiguous()
    out = torch.empty(src.shape[0], src.shape[1], h, w, dtype=torch.float32)
    for i in range(src.shape[0]):
        for c in range(src.shape[1]):
            cv2.resize(src[i, c].numpy(), (w, h), dst=out[i, c].numpy(), interpolation=interpolation)
    return out.to(x.device, x.dtype)


# OpenCV flag -> F.interpolate (mode, antialias); see resize's docstring for the choices.
_TORCH_MODES = {
    cv2.INTER_CUBIC: ("bicubic", False),
    cv2.INTER_AREA: ("bilinear", True),
    cv2.INTER_LINEAR: ("bilinear", False),
    cv2.INTER_NEAREST: ("nearest", False),
    cv2.INTER_NEAREST_EXACT: ("nearest-exact", False),
}


def _interpolate(x: torch.Tensor, size: Size, interpolation: int) -> torch.Tensor | None:
    """:func:`resize` by ``F.interpolate`` on ``x``'s device (any device, CPU included, for
    comparisons); None where ``interpolation`` has no counterpart or the device lacks the kernel."""
    import torch.nn.functional as F

    mode = _TORCH_MODES.get(interpolation)
    if mode is None:
        return None
    (h, w), (sh, sw) = size, x.shape[-2:]
    if interpolation == cv2.INTER_AREA and h <= sh and w <= sw and sh % h == 0 and sw % w == 0:
        mode = ("area", False)  # whole-number factors: torch's box average is OpenCV's exactly
    src = x.detach()
    if src.dtype not in (torch.float32, torch.float64):
        src = src.float()
    kw = {"align_corners": False, "antialias": mode[1]} if mode[0] in ("bilinear", "bicubic") else {}
    try:
        out = F.interpolate(src, size=tuple(size), mode=mode[0], **kw)
    except NotImplementedError:  # e.g. an antialiased mode missing from an older MPS backend
        return None
    return out.to(x.dtype).contiguous()
