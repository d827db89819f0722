"""Image files in and out through imageio, and conversions between uint8 HWC and float BCHW.

The library itself never writes files; these helpers are what the CLI calls.
"""

from __future__ import annotations

import os
from importlib import resources

import cv2
import imageio.v3 as iio
import numpy as np
import torch

from cnnvis.errors import InputError
from cnnvis.io.files import write_atomic

BUNDLED_IMAGE = "chelsea.jpg"  # Chelsea the cat, CC0 (Stefan van der Walt, via scikit-image)


def bundled_image_path() -> str:
    """Path of the photo shipped with the package (used when no image is given)."""
    return str(resources.files("cnnvis") / "data" / BUNDLED_IMAGE)


def to_float_rgb(arr: np.ndarray, source: str = "image") -> np.ndarray:
    """Any image array -> float32 (H, W, 3) RGB in [0, 1].

    Handles grayscale (H, W) or (H, W, 1), gray+alpha, RGB, RGBA (composited over white),
    uint8, uint16 (16-bit PNG/TIFF), other integer types, and float in [0, 1].
    """
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise InputError(f"unsupported image layout {a.shape} in '{source}'; give a grayscale, RGB or RGBA image")
    if a.dtype == np.bool_:
        a = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.integer):
        top = float(np.iinfo(a.dtype).max)
        a = a.astype(np.float32)
        a /= top  # in place: at 4096x4096 a temporary would be another 200 MB
    else:
        a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise InputError(f"image '{source}' contains NaN or Inf values; give a finite image")
        # Float files are taken as [0, 1]; a file with a larger range is scaled by its maximum.
        a = np.clip(a / max(float(a.max()), 1.0), 0.0, 1.0)
    alpha = None
    if a.shape[2] in (2, 4):
        a, alpha = a[:, :, :-1], a[:, :, -1:]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    if alpha is not None:
        a = a * alpha + (1.0 - alpha)  # over a white background
    return np.ascontiguousarray(a, dtype=np.float32)


def read_image(path: str) -> np.ndarray:
    """Read an image file -> float32 (H, W, 3) RGB in [0, 1]. Multi-frame files give frame 0.

    Raises:
        InputError: missing, unreadable, corrupt or unsupported files.
    """
    if not os.path.exists(path):
        raise InputError(f"image not found: '{path}'; check the path")
    if os.path.isdir(path):
        raise InputError(f"'{path}' is a directory, not an image; pass an image file")
    if _is_16bit_color_png(path):
        # Pillow (imageio's PNG reader) reduces 48/64-bit colour PNGs to 8 bits; OpenCV keeps them.
        arr = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if arr is not None:
            return to_float_rgb(cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA if arr.shape[2] == 4 else cv2.COLOR_BGR2RGB), path)
    try:
        arr = iio.imread(path, index=0)
    except Exception as e:
        first = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise InputError(f"cannot read image '{path}' ({first}); give a valid PNG, JPEG, TIFF, BMP or GIF file") from None
    if arr.size == 0 or min(arr.shape[:2]) == 0:
        raise InputError(f"image '{path}' is empty; give an image with pixels")
    return to_float_rgb(arr, path)


def _is_16bit_color_png(path: str) -> bool:
    """True for a PNG whose header says 16 bits per sample and colour type RGB or RGBA."""
    with open(path, "rb") as f:
        head = f.read(26)
    return len(head) == 26 and head[:8] == b"\x89PNG\r\n\x1a\n" and head[24] == 16 and head[25] in (2, 6)


def hwc_to_bchw(img: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W, 3) float -> (1, 3, H, W) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].to(device, torch.float32)


def to_uint8(x: torch.Tensor, mode: str = "clip", item: int = 0) -> np.ndarray:
    """Image ``item`` of an (N, C, H, W) float canvas -> uint8 (H, W, C): C = 3 (RGB) or 4 (RGBA,
    alpha kept as the 4th channel).

    ``clip`` clamps to [0, 1]; ``rescale`` maps the image's min..max linearly onto 0..255
    (cnn-vis's --rescale_image), which shows detail in saturated regions (of the colours: alpha
    is clipped).
    """
    t = x.detach()[item].to("cpu", torch.float32, copy=True)  # the in-place ops below must not touch x
    if mode == "rescale":
        rgb = t[:3]
        lo, hi = float(rgb.min()), float(rgb.max())
        rgb.sub_(lo).div_(max(hi - lo, 1e-12))
    elif mode != "clip":
        raise InputError(f"unknown output mode '{mode}'; use clip or rescale")
    return t.clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def contact_sheet(images: list[np.ndarray], labels: list[str] | None = None, gap: int = 4, columns: int | None = None) -> np.ndarray:
    """uint8 (H, W, C) images of one size in a grid on white (C = 4: opaque white), about square
    (``columns`` = ceil(sqrt(N)) by default), ``gap`` pixels apart, each labelled in its top-left
    corner."""
    import math

    n = len(images)
    h, w, c = images[0].shape
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    sheet = np.full((rows * h + (rows + 1) * gap, cols * w + (cols + 1) * gap, c), 255, np.uint8)
    scale = max(0.35, min(h, w) / 400)
    for k, img in enumerate(images):
        y, x = gap + (k // cols) * (h + gap), gap + (k % cols) * (w + gap)
        sheet[y:y + h, x:x + w] = img
        if labels:
            org = (x + 4, y + int(22 * scale) + 2)
            cv2.putText(sheet, labels[k], org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0, 255), max(2, int(4 * scale)), cv2.LINE_AA)
            cv2.putText(sheet, labels[k], org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255, 255), max(1, int(1.5 * scale)), cv2.LINE_AA)
    return sheet


def labelled_path(out: str, label: str) -> str:
    """``dir/name.png`` and ``c5`` -> ``dir/name_c5.png``."""
    stem, ext = os.path.splitext(out)
    return f"{stem}_{label}{ext}"


IMAGE_OUT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".mp4")


def check_writable(path: str, extensions: tuple[str, ...] = IMAGE_OUT_EXTENSIONS) -> None:
    """Raise InputError unless ``path`` can be created as a file (directory exists and is
    writable) and ends in one of ``extensions``."""
    d = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(d):
        raise InputError(f"cannot write '{path}': directory '{d}' does not exist; create it or choose another --out")
    if not os.access(d, os.W_OK):
        raise InputError(f"cannot write '{path}': directory '{d}' is not writable; choose another --out")
    if os.path.isdir(path):
        raise InputError(f"cannot write '{path}': it is a directory; give a file name such as out{extensions[0]}")
    ext = os.path.splitext(path)[1].lower()
    if ext not in extensions:
        raise InputError(f"cannot tell the format of '{path}' from its extension; use {' or '.join(extensions[:2])}")


VIDEO_EXTENSIONS = (".gif", ".mp4")


def _video_extension(path: str) -> str:
    """The lower-case extension of a video path; InputError unless it is .gif or .mp4."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in VIDEO_EXTENSIONS:
        raise InputError(f"cannot write a video to '{path}'; use a .gif or .mp4 file name")
    return ext


def check_video_path(path: str) -> None:
    """Raise InputError unless ``path`` is a writable .gif or .mp4 file name."""
    check_writable(path)
    _video_extension(path)


def save_image(path: str, img: np.ndarray, manifest: dict | None = None, quality: int = 95) -> None:
    """Write uint8 (H, W, 3) or RGBA (H, W, 4) to ``path`` atomically; the format follows the
    extension (RGBA needs one with alpha: PNG, TIFF, WebP).

    A ``manifest`` (:mod:`cnnvis.manifest`) goes into a PNG's text chunk and, for every format,
    into the sidecar ``NAME.manifest.json``. ``quality``: JPEG quality (1-100)."""
    ext = os.path.splitext(path)[1].lower()
    kwargs = {"quality": int(quality)} if ext in (".jpg", ".jpeg") else {}
    if manifest is not None and ext == ".png":
        from cnnvis.io.manifest import png_text

        kwargs.update(png_text(manifest))
    write_atomic(path, lambda tmp: iio.imwrite(tmp, img, extension=ext, **kwargs))
    if manifest is not None:
        from cnnvis.io.manifest import write_sidecar

        write_sidecar(path, manifest)


def save_video(path: str, frames: list[np.ndarray], fps: float = 10.0) -> None:
    """Write uint8 (H, W, 3) frames as an animated GIF or an MP4 (imageio-ffmpeg), atomically."""
    if not frames:
        return
    if _video_extension(path) == ".gif":
        write_atomic(path, lambda tmp: iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=1000.0 / fps, loop=0))
    else:
        # H.264 wants even sides.
        h, w = (frames[0].shape[0] // 2) * 2, (frames[0].shape[1] // 2) * 2
        stack = np.stack([f[:h, :w] for f in frames])
        if _has_pyav():
            write_atomic(path, lambda tmp: iio.imwrite(tmp, stack, extension=".mp4", plugin="pyav", fps=fps))
        else:
            # macro_block_size=2: keep the frame size (the default 16 would rescale frames).
            write_atomic(path, lambda tmp: iio.imwrite(tmp, stack, extension=".mp4", plugin="FFMPEG", fps=fps, macro_block_size=2))


def _has_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True
