"""Reading every kind of image file, 8-bit conversion, atomic writes and videos."""

from __future__ import annotations

import os

import cv2
import imageio.v3 as iio
import numpy as np
import pytest
import torch

from cnnvis import InputError
from cnnvis.io.files import write_atomic
from cnnvis.io.images import (
    bundled_image_path,
    check_writable,
    hwc_to_bchw,
    read_image,
    save_image,
    save_video,
    to_float_rgb,
    to_uint8,
)


def test_read_rgb_uint8_png(make_image):
    arr = (np.arange(12 * 10 * 3) % 256).astype(np.uint8).reshape(12, 10, 3)
    img = read_image(make_image("rgb.png", array=arr))
    assert img.shape == (12, 10, 3) and img.dtype == np.float32
    np.testing.assert_allclose(img, arr / 255.0, atol=1e-6)


def test_read_rgba_png_composited_over_white(make_image):
    arr = np.zeros((4, 5, 4), np.uint8)
    arr[..., :3] = (200, 10, 40)
    arr[0, 0, 3] = 0  # fully transparent -> white
    arr[0, 1, 3] = 255  # opaque -> its colour
    arr[0, 2, 3] = 128  # half -> halfway to white
    img = read_image(make_image("rgba.png", array=arr))
    assert img.shape == (4, 5, 3)
    np.testing.assert_allclose(img[0, 0], [1.0, 1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(img[0, 1], np.array([200, 10, 40]) / 255, atol=1e-6)
    a = 128 / 255
    np.testing.assert_allclose(img[0, 2], np.array([200, 10, 40]) / 255 * a + (1 - a), atol=1e-6)


def test_read_grayscale_png_gives_three_equal_channels(make_image):
    arr = np.linspace(0, 255, 6 * 7).reshape(6, 7).astype(np.uint8)
    path = make_image("gray.png", array=arr)
    assert iio.imread(path).ndim == 2  # really a 1-channel file
    img = read_image(path)
    assert img.shape == (6, 7, 3)
    assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2])
    np.testing.assert_allclose(img[..., 0], arr / 255.0, atol=1e-6)


def test_read_16bit_grayscale_png(make_image):
    arr = np.zeros((3, 4), np.uint16)
    arr[0, 0], arr[0, 1], arr[0, 2], arr[0, 3] = 65535, 32768, 1000, 1
    path = make_image("g16.png", array=arr)
    assert iio.imread(path).dtype == np.uint16
    img = read_image(path)
    assert img[0, 0, 0] == pytest.approx(1.0, abs=1e-7)
    assert img[0, 1, 0] == pytest.approx(32768 / 65535, abs=1e-6)
    assert img[0, 2, 0] == pytest.approx(1000 / 65535, abs=1e-6)  # not 1000 >> 8 / 255
    assert img[0, 3, 0] == pytest.approx(1 / 65535, abs=2e-7)


def test_read_16bit_rgb_png(tmp_path):
    arr = np.zeros((3, 4, 3), np.uint16)
    arr[0, 0] = (65535, 32768, 1000)
    arr[0, 1] = (1, 257, 40000)
    path = str(tmp_path / "rgb16.png")
    assert cv2.imwrite(path, arr[:, :, ::-1])  # OpenCV writes a real 48-bit PNG (BGR order)
    assert cv2.imread(path, cv2.IMREAD_UNCHANGED).dtype == np.uint16
    img = read_image(path)
    np.testing.assert_allclose(img[0, 0], np.array([65535, 32768, 1000]) / 65535, atol=1e-6)
    np.testing.assert_allclose(img[0, 1], np.array([1, 257, 40000]) / 65535, atol=1e-6)


def test_read_jpeg(make_image):
    path = make_image("photo.jpg", h=30, w=40)
    img = read_image(path)
    assert img.shape == (30, 40, 3) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    from conftest import smooth_rgb

    assert np.abs(img - smooth_rgb(30, 40) / 255.0).mean() < 0.05  # lossy but close


def test_read_bundled_image():
    img = read_image(bundled_image_path())
    assert img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) > 100


def test_read_missing_file(tmp_path):
    p = str(tmp_path / "nope.png")
    with pytest.raises(InputError, match="not found") as e:
        read_image(p)
    assert p in str(e.value)


def test_read_corrupt_file(tmp_path):
    p = tmp_path / "broken.png"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    with pytest.raises(InputError) as e:
        read_image(str(p))
    assert str(p) in str(e.value)
    assert "\n" not in str(e.value)


def test_read_truncated_png(tmp_path, make_image):
    good = make_image("good.png", h=40, w=40)
    data = open(good, "rb").read()
    p = tmp_path / "truncated.png"
    p.write_bytes(data[:60])
    with pytest.raises(InputError, match="truncated.png"):
        read_image(str(p))


def test_read_directory(tmp_path):
    with pytest.raises(InputError, match="directory"):
        read_image(str(tmp_path))


def test_to_float_rgb_gray_alpha_and_float():
    ga = np.zeros((2, 2, 2), np.uint8)
    ga[..., 0] = 100
    ga[0, 0, 1] = 0
    ga[1, 1, 1] = 255
    out = to_float_rgb(ga)
    assert out.shape == (2, 2, 3)
    np.testing.assert_allclose(out[0, 0], 1.0)
    np.testing.assert_allclose(out[1, 1], 100 / 255, atol=1e-6)
    f = to_float_rgb(np.full((2, 3, 3), 0.25, np.float64))
    assert f.dtype == np.float32 and np.allclose(f, 0.25)
    with pytest.raises(InputError, match="NaN"):
        to_float_rgb(np.full((2, 2, 3), np.nan))
    with pytest.raises(InputError, match="layout"):
        to_float_rgb(np.zeros((2, 2, 5)))


def test_to_float_rgb_float_image_out_of_range_lands_in_unit_range():
    a = np.array([[[-2.0, 0.0, 4.0]]], np.float32)
    out = to_float_rgb(a)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_hwc_to_bchw_roundtrip():
    img = np.random.default_rng(0).random((5, 6, 3)).astype(np.float32)
    t = hwc_to_bchw(img)
    assert t.shape == (1, 3, 5, 6) and t.dtype == torch.float32
    assert np.array_equal(t[0].permute(1, 2, 0).numpy(), img)


def test_to_uint8_clip_and_rescale():
    x = torch.tensor([-0.5, 0.0, 0.5, 1.0, 1.5]).view(1, 1, 1, 5).expand(1, 3, 1, 5).clone()
    clip = to_uint8(x.clone(), "clip")
    assert clip.shape == (1, 5, 3) and clip.dtype == np.uint8
    assert clip[0, :, 0].tolist() == [0, 0, 128, 255, 255]
    resc = to_uint8(x, "rescale")
    assert resc[0, :, 0].tolist() == [0, 64, 128, 191, 255]
    flat = to_uint8(torch.full((1, 3, 2, 2), 3.0), "rescale")  # no division by zero
    assert flat.dtype == np.uint8
    with pytest.raises(InputError, match="'gamma'"):
        to_uint8(x, "gamma")


@pytest.mark.parametrize("name", ["out.png", "out.jpg", "out.bmp", "out.tif"])
def test_save_image_atomic_roundtrip(tmp_path, name):
    from conftest import smooth_rgb

    img = smooth_rgb(20, 24, seed=1)
    path = tmp_path / name
    path.write_bytes(b"old")  # replaced in one go
    save_image(str(path), img)
    assert sorted(os.listdir(tmp_path)) == [name], "temporary files left behind"
    back = iio.imread(path)
    assert back.shape == (20, 24, 3)
    if name.endswith(".jpg"):
        assert np.abs(back.astype(int) - img).mean() < 15
    else:
        assert np.array_equal(back, img)


def test_write_atomic_failure_leaves_no_temp_and_keeps_old(tmp_path):
    path = tmp_path / "keep.png"
    path.write_bytes(b"old content")
    seen = []

    def failing_writer(tmp):
        seen.append(tmp)
        with open(tmp, "wb") as f:
            f.write(b"half a pn")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(str(path), failing_writer)
    assert seen and os.path.dirname(seen[0]) == str(tmp_path) and seen[0] != str(path)
    assert sorted(os.listdir(tmp_path)) == ["keep.png"]
    assert path.read_bytes() == b"old content"


def test_check_writable(tmp_path):
    check_writable(str(tmp_path / "fine.png"))
    missing = str(tmp_path / "no_such_dir" / "x.png")
    with pytest.raises(InputError, match="does not exist") as e:
        check_writable(missing)
    assert missing in str(e.value)
    with pytest.raises(InputError, match="extension") as e:
        check_writable(str(tmp_path / "out.xyz"))
    assert "out.xyz" in str(e.value)
    (tmp_path / "adir.png").mkdir()
    with pytest.raises(InputError, match="directory"):
        check_writable(str(tmp_path / "adir.png"))


def _frames(n=5, h=16, w=20):
    return [np.full((h, w, 3), (i * 50) % 256, np.uint8) for i in range(n)]


def test_to_uint8_does_not_modify_its_input():
    x = torch.tensor([-0.5, 0.25, 1.5]).view(1, 1, 1, 3).expand(1, 3, 1, 3).clone()
    before = x.clone()
    to_uint8(x, "clip")
    assert torch.equal(x, before)


def test_save_video_gif(tmp_path):
    path = tmp_path / "v.gif"
    save_video(str(path), _frames(5))
    assert sorted(os.listdir(tmp_path)) == ["v.gif"]
    back = iio.imread(path, index=None)
    assert back.shape[0] == 5 and back.shape[1:3] == (16, 20)
    assert [int(f[..., 0].mean()) for f in back] == [0, 50, 100, 150, 200]


def _write_mp4_or_skip(path, frames):
    try:
        save_video(str(path), frames)
    except Exception as e:  # pragma: no cover - depends on an ffmpeg backend
        pytest.skip(f"no working mp4 writer here: {e!r}")


def test_save_video_mp4(tmp_path):
    path = tmp_path / "v.mp4"
    _write_mp4_or_skip(path, _frames(6, 33, 49))  # odd sides are cropped to even: 32x48
    assert path.stat().st_size > 0
    assert sorted(os.listdir(tmp_path)) == ["v.mp4"]
    back = iio.imread(path, index=None, plugin="FFMPEG")
    assert back.shape[0] == 6 and back.shape[1:3] == (32, 48)
    assert abs(int(back[-1].mean()) - 250) < 12 and int(back[0].mean()) < 12


def test_save_video_mp4_keeps_even_frame_size(tmp_path):
    path = tmp_path / "v.mp4"
    _write_mp4_or_skip(path, _frames(4, 18, 20))
    back = iio.imread(path, index=None, plugin="FFMPEG")
    assert back.shape[1:3] == (18, 20)


def test_save_video_bad_extension_and_empty(tmp_path):
    with pytest.raises(InputError, match="v.avi"):
        save_video(str(tmp_path / "v.avi"), _frames(2))
    save_video(str(tmp_path / "empty.gif"), [])
    assert not (tmp_path / "empty.gif").exists()


def test_saved_image_has_the_mode_a_plain_open_would_give(tmp_path):
    from conftest import smooth_rgb

    old = os.umask(0o022)
    try:
        path = tmp_path / "mode.png"
        save_image(str(path), smooth_rgb(8, 8))
        assert (os.stat(path).st_mode & 0o777) == 0o644  # not mkstemp's private 0600
    finally:
        os.umask(old)
