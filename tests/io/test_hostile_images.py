"""Image files that read wrongly or take too much before the fix: CMYK, EXIF orientation, huge headers."""

from __future__ import annotations

import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from cnnvis.errors import InputError
from cnnvis.io.images import USABLE, check_decode_memory, decode_bytes, read_header, read_image

# 8x8 blocks (the JPEG block size) of red, green, blue / white, black, grey: colours a CMYK
# file must keep, and that white (the bug: CMYK taken as RGBA) would not.
BLOCKS = np.array([[(255, 0, 0), (0, 255, 0), (0, 0, 255)], [(255, 255, 255), (0, 0, 0), (128, 128, 128)]], np.uint8)
PATTERN = BLOCKS.repeat(8, axis=0).repeat(8, axis=1)  # (16, 24, 3)


def _block_means(img: np.ndarray) -> np.ndarray:
    """(16, 24, 3) float image -> (2, 3, 3) the mean colour of each 8x8 block, 0..255."""
    return img.reshape(2, 8, 3, 8, 3).mean(axis=(1, 3)) * 255


def test_cmyk_jpeg_reads_as_its_colours_not_white(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(PATTERN).convert("CMYK").save(path, quality=95)
    data = path.read_bytes()
    assert b"Adobe" in data[:200]  # Pillow writes Adobe's APP14 marker: the inverted CMYK of Photoshop files
    assert Image.open(path).mode == "CMYK"
    img = read_image(str(path))
    assert img.shape == (16, 24, 3)
    np.testing.assert_allclose(_block_means(img), BLOCKS, atol=12)


def test_cmyk_jpeg_with_a_profile_for_another_colour_space_falls_back_to_the_plain_conversion(tmp_path):
    path = tmp_path / "cmyk_srgb_profile.jpg"
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()  # an RGB profile: no CMYK transform
    Image.fromarray(PATTERN).convert("CMYK").save(path, quality=95, icc_profile=srgb)
    assert Image.open(path).info.get("icc_profile")
    np.testing.assert_allclose(_block_means(read_image(str(path))), BLOCKS, atol=12)


def test_cmyk_tiff_reads_exactly(tmp_path):
    path = tmp_path / "cmyk.tif"
    Image.fromarray(PATTERN).convert("CMYK").save(path)  # lossless: the colours come back exactly
    np.testing.assert_array_equal(np.round(read_image(str(path)) * 255), PATTERN)


def _quadrants(h: int = 20, w: int = 40) -> np.ndarray:
    """uint8 (h, w, 3): red top-left, green top-right, blue bottom-left, white bottom-right."""
    a = np.zeros((h, w, 3), np.uint8)
    a[: h // 2, : w // 2], a[: h // 2, w // 2 :] = (255, 0, 0), (0, 255, 0)
    a[h // 2 :, : w // 2], a[h // 2 :, w // 2 :] = (0, 0, 255), (255, 255, 255)
    return a


def _oriented(orientation: int) -> Image.Image:
    """The quadrants as a Pillow image whose EXIF says ``orientation``."""
    im = Image.fromarray(_quadrants())
    im.getexif()[0x0112] = orientation  # getexif() is cached on the image: this is its EXIF
    return im


def _save_oriented(path, orientation: int) -> None:
    im = _oriented(orientation)
    im.save(path, exif=im.getexif(), **({"quality": 95} if path.suffix == ".jpg" else {}))


def test_jpeg_with_exif_orientation_6_reads_upright(tmp_path):
    """Orientation 6: the camera was turned a quarter clockwise; viewers show the stored 20x40 pixels
    turned 90 degrees clockwise, 40 rows by 20 columns, the stored bottom-left corner at the top-left."""
    path = tmp_path / "phone.jpg"
    _save_oriented(path, 6)
    img = np.round(read_image(str(path)) * 255)
    assert img.shape == (40, 20, 3)
    np.testing.assert_allclose(img[1, 1], (0, 0, 255), atol=40)  # top-left: was bottom-left (blue)
    np.testing.assert_allclose(img[1, -2], (255, 0, 0), atol=40)  # top-right: was top-left (red)
    np.testing.assert_allclose(img[-2, 1], (255, 255, 255), atol=40)  # bottom-left: was bottom-right (white)
    np.testing.assert_allclose(img[-2, -2], (0, 255, 0), atol=40)  # bottom-right: was top-right (green)


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_reads_as_pillow_shows_it(tmp_path, suffix, orientation):
    path = tmp_path / f"o{orientation}{suffix}"
    _save_oriented(path, orientation)
    want = np.asarray(ImageOps.exif_transpose(_oriented(orientation)))  # as Pillow shows it, from the pixels stored
    got = np.round(read_image(str(path)) * 255)
    assert got.shape == want.shape == ((20, 40, 3) if orientation < 5 else (40, 20, 3))
    tolerance = 8 if suffix == ".jpg" else 0  # JPEG blurs the quadrant edges a little
    assert np.abs(got - want).mean() <= tolerance


def test_palette_png_still_reads_its_colours(tmp_path):
    path = tmp_path / "palette.png"
    Image.fromarray(PATTERN).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(path)
    assert Image.open(path).mode == "P"
    np.testing.assert_array_equal(np.round(read_image(str(path)) * 255), PATTERN)


def _png_header_only(path, w: int, h: int, bit_depth: int, colour_type: int) -> str:
    """A PNG whose IHDR claims w x h pixels but whose data is a few bytes: decoding it would first
    allocate the whole claimed image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0)
    idat = zlib.compress(bytes(64))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return str(path)


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_a_header_over_the_decompression_bomb_limit_is_refused_at_once(tmp_path, bit_depth):
    """15000x15000 = 225 million pixels, over Pillow's error threshold (2 x MAX_IMAGE_PIXELS): the
    16-bit file (read by OpenCV) is held to the same limit as the 8-bit one (read by Pillow)."""
    path = _png_header_only(tmp_path / f"bomb{bit_depth}.png", 15000, 15000, bit_depth, 2)
    start = time.perf_counter()
    with pytest.raises(InputError) as e:
        read_image(path)
    assert time.perf_counter() - start < 1.0
    msg = str(e.value)
    assert "\n" not in msg and path in msg and "too large to decode safely" in msg and "smaller image" in msg
    assert "225000000 pixels" in msg


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's warning over 89 Mpixels
@pytest.mark.parametrize("bit_depth, need_gb", [(8, 2.59), (16, 3.46)])
def test_a_header_too_large_for_the_memory_available_is_refused_before_decoding(tmp_path, bit_depth, need_gb):
    """12000x12000 RGB, under the bomb limit: refused with 1 GiB available, naming the file, its
    pixels, the estimate, the memory available and the fix, without decoding (no 'cannot read')."""
    path = _png_header_only(tmp_path / f"big{bit_depth}.png", 12000, 12000, bit_depth, 2)
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(InputError) as e:
            read_image(path, available=1 << 30)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0 and peak < 10 << 20
    msg = str(e.value)
    assert "\n" not in msg and "cannot read" not in msg
    for needle in (path, "12000x12000 pixels", f"about {need_gb} GB", "1.07 GB is available", "smaller image"):
        assert needle in msg, (needle, msg)


def test_decode_estimate_counts_the_decoded_array_and_the_float_conversion():
    assert decode_bytes(100, 200, 3, 1) == 100 * 200 * (2 * 3 + 4 * 3)  # RGB: uint8 twice, then float32 (H, W, 3)
    assert decode_bytes(100, 200, 3, 2) == 100 * 200 * (2 * 6 + 4 * 3)  # 16-bit samples: twice the bytes decoded
    assert decode_bytes(100, 200, 1, 1) == 100 * 200 * (2 + 4 * 4)  # grey: float (H, W, 1), then the (H, W, 3) result
    assert decode_bytes(100, 200, 4, 1) == 100 * 200 * (2 * 4 + 4 * 11)  # RGBA: and the compositing temporaries


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_decode_estimate_covers_what_reading_really_allocates(tmp_path, channels):
    """tracemalloc sees numpy's allocations (not Pillow's own buffer): the estimate is above them."""
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (300, 200, channels), dtype=np.uint8)
    path = tmp_path / f"c{channels}.png"
    Image.fromarray(arr[..., 0] if channels == 1 else arr).save(path)  # L, LA, RGB or RGBA
    header = read_header(str(path))
    assert (header.height, header.width, header.channels, header.sample_bytes) == (300, 200, channels, 1)
    tracemalloc.start()
    try:
        read_image(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= decode_bytes(300, 200, channels, 1)


def test_header_of_a_16bit_png_counts_two_bytes_a_sample(tmp_path):
    header = read_header(_png_header_only(tmp_path / "h.png", 30, 20, 16, 6))
    got = (header.height, header.width, header.channels, header.sample_bytes, header.reader)
    assert got == (20, 30, 4, 2, "opencv")


def test_the_memory_check_uses_the_usable_fraction(tmp_path):
    path = str(tmp_path / "small.png")
    Image.fromarray(PATTERN).save(path)
    header = read_header(path)
    need = decode_bytes(16, 24, 3, 1)
    assert check_decode_memory(path, header, available=int(need / USABLE) + 1) == need
    with pytest.raises(InputError, match="smaller image"):
        check_decode_memory(path, header, available=int(need / USABLE) - 1)
    assert read_image(path, available=1 << 30).shape == (16, 24, 3)
