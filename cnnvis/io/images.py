"""Image files in and out through imageio, and conversions between uint8 HWC and float BCHW.

The library itself never writes files; these helpers are what the CLI calls.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from importlib import resources
from io import BytesIO
from typing import TYPE_CHECKING

import cv2
import imageio.v3 as iio
import numpy as np
from PIL import Image

from cnnvis.defaults import JPEG_QUALITY
from cnnvis.errors import InputError
from cnnvis.io.files import check_folder_writable, write_atomic, write_pair

if TYPE_CHECKING:
    import torch

BUNDLED_IMAGE = "chelsea.jpg"  # Chelsea the cat, CC0 (Stefan van der Walt, via scikit-image)
FLOAT_BYTES = 4
# Fraction of the available memory a plan may use: the rest is for the model, a batch's activations,
# the allocator's slack and other processes. The pipeline's pre-flight (cnnvis.pipeline.memory) uses
# it too: it is defined here because cnnvis.io may not import the pipeline.
USABLE = 0.8


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
        a = a * alpha  # then over a white background, in place: one (H, W, 3) temporary fewer
        a += 1.0 - alpha
    return np.ascontiguousarray(a, dtype=np.float32)


def read_image(path: str, available: int | None = None) -> np.ndarray:
    """Read an image file -> float32 (H, W, 3) RGB in [0, 1], as image viewers show it: turned by
    its EXIF/TIFF orientation, CMYK converted to RGB. Multi-frame files give frame 0.

    ``available``: bytes of memory free for the decode (default: the machine's MemAvailable); the
    header is checked against it (:func:`check_decode_memory`) before any pixel is decoded.

    Raises:
        InputError: missing, unreadable, corrupt, unsupported or too large files.
    """
    if not os.path.exists(path):
        raise InputError(f"image not found: '{path}'; check the path")
    if os.path.isdir(path):
        raise InputError(f"'{path}' is a directory, not an image; pass an image file")
    header = read_header(path)
    if header is not None:
        check_decode_memory(path, header, available)
    try:
        arr = _decode(path, header)
    except Exception as e:
        first = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise InputError(
            f"cannot read image '{path}' ({first}); give a valid PNG, JPEG, TIFF, BMP or GIF file"
        ) from None
    if arr.size == 0 or min(arr.shape[:2]) == 0:
        raise InputError(f"image '{path}' is empty; give an image with pixels")
    return to_float_rgb(arr, path)


def _decode(path: str, header: ImageHeader | None) -> np.ndarray:
    """The pixels of frame 0, oriented, by the reader that keeps the most of them: OpenCV for 16-bit
    colour PNGs, Pillow for CMYK, tifffile (through imageio) for TIFF, imageio's Pillow plugin else."""
    if header is not None and header.reader == "opencv":
        # Pillow (imageio's PNG reader) reduces 48/64-bit colour PNGs to 8 bits; OpenCV keeps them.
        arr = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if arr is not None and arr.ndim == 3:
            return cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA if arr.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    if header is not None and header.mode == "CMYK":
        return _read_cmyk(path)
    if header is not None and header.format == "TIFF":
        return _orient(iio.imread(path, index=0), header.orientation)  # tifffile ignores the orientation tag
    if header is not None:
        return iio.imread(path, index=0, plugin="pillow", rotate=True)
    return iio.imread(path, index=0)  # a format Pillow does not know: imageio's other plugins


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says, read without decoding a pixel: its size in pixels, the
    samples per pixel and bytes per sample of the array it decodes to, Pillow's mode and format
    name, the TIFF orientation tag (1-8; 1 = as stored) and which reader decodes it."""

    height: int
    width: int
    channels: int
    sample_bytes: int
    mode: str
    format: str
    orientation: int = 1
    reader: str = "pillow"


def read_header(path: str) -> ImageHeader | None:
    """The :class:`ImageHeader` of ``path``, or None when Pillow cannot parse it (imageio's other
    plugins may still read the file).

    Raises:
        InputError: more pixels than Pillow's decompression-bomb limit (2 x ``Image.MAX_IMAGE_PIXELS``,
            the 16-bit PNGs that OpenCV decodes included).
    """
    png16 = _png16_header(path)
    if png16 is not None:
        h, w, c = png16
        _check_pixels(path, h, w)  # OpenCV has no such limit of its own below 2**30 pixels
        return ImageHeader(h, w, c, 2, "RGBA;16" if c == 4 else "RGB;16", "PNG", reader="opencv")
    try:
        with Image.open(path) as im:  # lazy: reads the header only
            w, h = im.size
            channels = 4 if im.mode in ("P", "PA") else len(im.getbands())  # a palette expands to RGB(A)
            sample = 2 if im.mode.startswith("I;16") else 4 if im.mode in ("I", "F") else 1
            orientation = 1
            if im.format == "TIFF":
                bits = im.tag_v2.get(258, 8)
                sample = max(1, -(-max(bits if isinstance(bits, tuple) else (bits,)) // 8))
                channels = int(im.tag_v2.get(277, channels))
                orientation = int(im.tag_v2.get(274, 1))
            return ImageHeader(h, w, channels, sample, im.mode, im.format or "", orientation)
    except Image.DecompressionBombError as e:
        raise InputError(
            f"image '{path}' is too large to decode safely ({e}); give a smaller image (resize it)"
        ) from None
    except Exception:  # not an image Pillow knows, or a corrupt header: left to imageio's error
        return None


def _png16_header(path: str) -> tuple[int, int, int] | None:
    """(height, width, channels) from the IHDR of a PNG with 16 bits per sample and colour type RGB
    (3 channels) or RGBA (4); None for any other file."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    if head[24] != 16 or head[25] not in (2, 6):  # bit depth, colour type
        return None
    w, h = struct.unpack(">II", head[16:24])
    return h, w, 4 if head[25] == 6 else 3


def _check_pixels(path: str, h: int, w: int) -> None:
    """Pillow's decompression-bomb limit for files it does not decode itself: InputError above
    2 x ``Image.MAX_IMAGE_PIXELS`` pixels (no limit when that is None)."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and h * w > 2 * limit:
        raise InputError(
            f"image '{path}' is too large to decode safely ({w}x{h} = {h * w} pixels, "
            f"more than the limit of {2 * limit} pixels); give a smaller image (resize it)"
        )


def decode_bytes(height: int, width: int, channels: int, sample_bytes: int) -> int:
    """About the peak bytes of reading a ``height`` x ``width`` image of ``channels`` samples of
    ``sample_bytes`` bytes into float32 (H, W, 3): the decoder's buffer and the array taken from it,
    the float32 copy of every channel and, unless the image is RGB (divided in place), the (H, W, 3)
    result; compositing alpha over white (``channels`` 2 or 4) adds a product and ``1 - alpha``."""
    floats = 3 if channels == 3 else channels + 3
    if channels in (2, 4):
        floats += 4
    return height * width * (2 * channels * sample_bytes + FLOAT_BYTES * floats)


def check_decode_memory(path: str, header: ImageHeader, available: int | None = None) -> int:
    """Raise InputError when decoding ``header``'s image needs more than ``USABLE`` of ``available``
    bytes (default: :func:`cpu_available_bytes`; unknown: no check). Returns the estimate in bytes."""
    need = decode_bytes(header.height, header.width, header.channels, header.sample_bytes)
    free = cpu_available_bytes() if available is None else available
    if free is None or need <= USABLE * free:
        return need
    raise InputError(
        f"image '{path}' ({header.width}x{header.height} pixels) needs about {need / 1e9:.3g} GB "
        f"of memory to read, but {free / 1e9:.3g} GB is available; give a smaller image (resize it first)"
    )


def cpu_available_bytes() -> int | None:
    """Memory the machine can still give without swapping, in bytes (MemAvailable of
    /proc/meminfo; free pages where there is none), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _read_cmyk(path: str) -> np.ndarray:
    """A CMYK image (a YCCK JPEG too: libjpeg gives it as CMYK) -> uint8 (H, W, 3) RGB as viewers
    show it, oriented: through its embedded ICC profile into sRGB when that profile works, else
    Pillow's plain conversion (its JPEG reader already undoes Adobe's inverted CMYK)."""
    from PIL import ImageCms, ImageOps

    with Image.open(path) as im:
        icc = im.info.get("icc_profile")
        ImageOps.exif_transpose(im, in_place=True)
        if icc:
            try:
                src = ImageCms.ImageCmsProfile(BytesIO(icc))
                return np.asarray(ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB"))
            except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
                pass  # a broken profile, or one for another colour space: the plain conversion below
        return np.asarray(im.convert("RGB"))


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """(H, W, ...) stored pixels -> the picture as an EXIF/TIFF ``orientation`` (1-8) says to show
    them (Pillow's ``ImageOps.exif_transpose``, for readers that ignore the tag)."""
    if orientation in (5, 6, 7, 8):  # the stored rows are the picture's columns: transpose, then flip
        arr = arr.swapaxes(0, 1)
        orientation -= 4
    if orientation == 2:
        return arr[:, ::-1]
    if orientation == 3:
        return arr[::-1, ::-1]
    if orientation == 4:
        return arr[::-1]
    return arr


def hwc_to_bchw(img: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W, 3) float -> (1, 3, H, W) float32 tensor."""
    import torch  # here, not at import: the CLI answers a bad flag before torch loads

    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].to(device, torch.float32)


def to_uint8(x: torch.Tensor, mode: str = "clip", item: int = 0) -> np.ndarray:
    """Image ``item`` of an (N, C, H, W) float canvas -> uint8 (H, W, C): C = 3 (RGB) or 4 (RGBA,
    alpha kept as the 4th channel).

    ``clip`` clamps to [0, 1]; ``rescale`` maps the image's min..max linearly onto 0..255
    (cnn-vis's --rescale_image), which shows detail in saturated regions (of the colours: alpha
    is clipped).
    """
    import torch

    t = x.detach()[item].to("cpu", torch.float32, copy=True)  # the in-place ops below must not touch x
    if mode == "rescale":
        rgb = t[:3]
        lo, hi = float(rgb.min()), float(rgb.max())
        rgb.sub_(lo).div_(max(hi - lo, 1e-12))
    elif mode != "clip":
        raise InputError(f"unknown output mode '{mode}'; use clip or rescale")
    return t.clamp_(0, 1).mul_(255).round_().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def contact_sheet(
    images: list[np.ndarray], labels: list[str] | None = None, gap: int = 4, columns: int | None = None
) -> np.ndarray:
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
        sheet[y : y + h, x : x + w] = img
        if labels:
            org = (x + 4, y + int(22 * scale) + 2)
            # a dark outline, then the white text over it: readable on any image
            for colour, thickness in (((0, 0, 0, 255), max(2, int(4 * scale))), ((255,) * 4, max(1, int(1.5 * scale)))):
                cv2.putText(sheet, labels[k], org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)
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
    if os.path.isdir(path):
        raise InputError(f"cannot write '{path}': it is a directory; give a file name such as out{extensions[0]}")
    ext = os.path.splitext(path)[1].lower()
    if ext not in extensions:
        raise InputError(f"cannot tell the format of '{path}' from its extension; use {' or '.join(extensions[:2])}")
    check_folder_writable(d, path)  # really writable: os.access says yes to root on a read-only mount


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


def save_image(path: str, img: np.ndarray, manifest: dict | None = None, quality: int = JPEG_QUALITY) -> None:
    """Write uint8 (H, W, 3) or RGBA (H, W, 4) to ``path`` atomically; the format follows the
    extension (RGBA needs one with alpha: PNG, TIFF, WebP).

    A ``manifest`` (:mod:`cnnvis.io.manifest`) goes into a PNG's text chunk and, for every format,
    into the sidecar ``NAME.manifest.json``. ``quality``: JPEG quality (1-100)."""
    ext = os.path.splitext(path)[1].lower()
    kwargs = {"quality": int(quality)} if ext in (".jpg", ".jpeg") else {}
    if manifest is not None and ext == ".png":
        from cnnvis.io.manifest import png_text

        kwargs.update(png_text(manifest))

    def write(tmp):
        # Encoded in memory, then written as plain bytes: a full disk is then one OSError here, and
        # no half-closed imageio writer is left to raise again when it is garbage-collected.
        data = iio.imwrite("<bytes>", img, extension=ext, **kwargs)
        with open(tmp, "wb") as f:
            f.write(data)

    _write_with_manifest(path, write, manifest)


def _write_with_manifest(path: str, write, manifest: dict | None) -> None:
    """``write(tmp)`` into ``path`` atomically, with its sidecar manifest when there is one."""
    if manifest is None:
        write_atomic(path, write)
        return
    from cnnvis.io.manifest import file_sha256, sidecar_path, sidecar_writer

    # the file and its sidecar appear together, the sidecar recording the file's SHA-256
    write_pair(
        path, write, sidecar_path(path), lambda tmp_side, tmp: sidecar_writer(manifest, file_sha256(tmp))(tmp_side)
    )


def save_video(path: str, frames: list[np.ndarray], fps: float = 10.0, manifest: dict | None = None) -> None:
    """Write uint8 (H, W, 3) frames as an animated GIF or an MP4 (imageio-ffmpeg), atomically,
    with its sidecar ``NAME.EXT.manifest.json`` when a ``manifest`` is given."""
    if not frames:
        return
    if _video_extension(path) == ".gif":
        stack = np.stack(frames)

        def write(tmp):
            iio.imwrite(tmp, stack, extension=".gif", duration=1000.0 / fps, loop=0)

    else:
        # H.264 wants even sides.
        h, w = (frames[0].shape[0] // 2) * 2, (frames[0].shape[1] // 2) * 2
        stack = np.stack([f[:h, :w] for f in frames])

        def write(tmp):
            if _has_pyav():
                iio.imwrite(tmp, stack, extension=".mp4", plugin="pyav", fps=fps)
            else:  # macro_block_size=2: keep the frame size (the default 16 would rescale frames)
                iio.imwrite(tmp, stack, extension=".mp4", plugin="FFMPEG", fps=fps, macro_block_size=2)

    _write_with_manifest(path, write, manifest)


def _has_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def picture(canvas: torch.Tensor, mode: str, labels: list[str] | None = None) -> np.ndarray:
    """uint8 (H, W, C) of a canvas (N, C, H, W) (C = 4: RGBA): the image itself, or for a
    labelled batch a contact sheet of its images."""
    if not labels:
        return to_uint8(canvas, mode)
    return contact_sheet([to_uint8(canvas, mode, i) for i in range(canvas.shape[0])], labels)
