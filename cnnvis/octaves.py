"""Size plans (cnn-vis's initial/final/num-sizes and the octave form) and float resizing.

Resizing always happens in float32 through OpenCV, never through uint8, so values outside
[0, 1] that the optimizer produced survive the change of scale.
"""

from __future__ import annotations

import re

import cv2
import numpy as np
import torch

from .errors import InputError

Size = tuple[int, int]  # (height, width), pixels

_SIZE_RE = re.compile(r"^\s*(?:x(?P<f>[0-9]*\.?[0-9]+)|(?P<h>[0-9]+)x(?P<w>[0-9]+))\s*$")


def parse_size(text: str | None, base: Size) -> Size:
    """Parse ``xF`` (a multiple of ``base``) or ``HxW`` (pixels); ``None`` means ``base``."""
    if text is None or text == "":
        return base
    m = _SIZE_RE.match(str(text))
    if not m:
        raise InputError(f"malformed size '{text}'; write HxW in pixels (e.g. 1080x1920) or xF as a multiple (e.g. x1.5)")
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
        return [(max(1, round(end[0] / octave_scale ** k)), max(1, round(end[1] / octave_scale ** k))) for k in range(octaves - 1, -1, -1)]
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
    """Resize (1, C, H, W) float to a contiguous (1, C, h, w) with OpenCV in float32.

    Bicubic when enlarging, area when shrinking; no value is clipped. Works plane by plane,
    straight into the output tensor, so the only large allocation is the result itself (at
    4096x4096 an HWC round trip would add two more canvas-sized copies). Returns a tensor on
    ``x``'s device.
    """
    h, w = size
    if tuple(x.shape[-2:]) == (h, w):
        return x.clone()
    if interpolation is None:
        interpolation = cv2.INTER_CUBIC if h * w > x.shape[-2] * x.shape[-1] else cv2.INTER_AREA
    src = x[0].detach().to("cpu", torch.float32).contiguous()
    out = torch.empty(1, src.shape[0], h, w, dtype=torch.float32)
    for c in range(src.shape[0]):
        cv2.resize(src[c].numpy(), (w, h), dst=out[0, c].numpy(), interpolation=interpolation)
    return out.to(x.device, x.dtype)
