"""The deep-dream "infinite zoom": dream, zoom into the centre, dream again, frame after frame.

Each frame starts from the previous frame magnified by ``scale`` about its centre (cropped back
to the same size), so the dream keeps growing new detail where the old one was enlarged
(Mordvintsev et al. 2015's zoom videos). The frames become a GIF or MP4.
"""

from __future__ import annotations

import numpy as np
import torch

from cnnvis.errors import InputError


def check_zoom(frames: int, scale: float) -> None:
    """InputError unless ``frames`` >= 1 and ``scale`` > 1."""
    if frames < 1:
        raise InputError(f"--zoom-frames must be at least 1, got {frames}")
    if not scale > 1:
        raise InputError(f"--zoom-scale must be above 1 (a magnification per frame), got {scale}")


def zoom_in(img: torch.Tensor, scale: float) -> torch.Tensor:
    """(1, 3, H, W) magnified by ``scale`` (> 1) about the centre, same size (kornia affine warp)."""
    import kornia.geometry.transform as KT

    check_zoom(1, scale)
    h, w = img.shape[-2:]
    center = torch.tensor([[(w - 1) / 2, (h - 1) / 2]], dtype=img.dtype, device=img.device)
    return KT.scale(
        img,
        torch.tensor([[scale, scale]], dtype=img.dtype, device=img.device),
        center=center,
        mode="bilinear",
        padding_mode="reflection",
        align_corners=True,
    )


def zoom_frames(make_render, start: torch.Tensor, frames: int, scale: float, on_frame=None) -> list[np.ndarray]:
    """Dream ``frames`` frames; ``make_render(init)`` builds the render of one frame from its start
    image (1, 3, H, W). ``on_frame(i, frame)`` sees each finished frame (uint8 H x W x 3)."""
    from cnnvis.io.images import to_uint8

    check_zoom(frames, scale)
    out: list[np.ndarray] = []
    x = start
    for i in range(frames):
        x = make_render(x).run()
        out.append(to_uint8(x, "clip"))
        if on_frame is not None:
            on_frame(i, out[-1])
        x = zoom_in(x.clamp(0, 1), scale)
    return out
