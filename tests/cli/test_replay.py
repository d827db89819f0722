"""Manifests on every output (PNG text chunk + sidecar) and ``cnnvis replay`` reproducing them bit for bit."""

from __future__ import annotations

import hashlib
import json
import os

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import assert_one_line_error, invoke

from cnnvis.io.manifest import FORMAT, file_sha256, read_manifest, sidecar_path


@pytest.fixture
def tiny(factory_module):
    return ["--model", f"{factory_module}:factory", "--weights", "random"]


def _dream(tmp_path, make_image, tiny, out="d.png", *extra):
    src = make_image("src.png", h=48, w=48)
    res = invoke(
        [
            "dream",
            src,
            *tiny,
            "--layer",
            "conv3",
            "--tile",
            32,
            "--steps",
            3,
            "--octaves",
            2,
            "-q",
            "--seed",
            7,
            "--out",
            tmp_path / out,
            *extra,
        ]
    )
    assert res.exit_code == 0, (res.output, res.exception)
    return src, str(tmp_path / out)


def test_manifest_in_png_text_chunk_and_sidecar(tmp_path, make_image, tiny):
    src, out = _dream(tmp_path, make_image, tiny)
    from PIL import Image

    with Image.open(out) as im:
        chunk = json.loads(im.text["cnnvis"])
    with open(sidecar_path(out)) as f:
        side = json.load(f)
    # the sidecar also records the SHA-256 of the image it belongs to
    assert side.pop("file_sha256") == file_sha256(out)
    assert chunk == side == read_manifest(out)
    m = chunk
    assert m["format"] == FORMAT and m["command"] == "dream" and m["status"] == "complete"
    assert m["seed"] == 7 and m["config"]["seed"] == 7 and m["config"]["steps"] == 3 and m["params"]["octaves"] == 2
    assert m["model"]["name"].endswith(":factory") and m["model"]["weights_sha256"] is None  # random weights
    assert m["inputs"]["image"] == {
        "path": os.path.abspath(src),
        "sha256": hashlib.sha256(open(src, "rb").read()).hexdigest(),
    }
    assert (
        m["versions"]["torch"]
        and m["versions"]["cnnvis"]
        and m["device"]["type"] == "cpu"
        and m["device"]["threads"] >= 1
    )


def test_replay_reproduces_dream_bit_for_bit(tmp_path, make_image, tiny):
    _, out = _dream(tmp_path, make_image, tiny)
    again = tmp_path / "again.png"
    res = invoke(["replay", "--trust-model", out, "--out", again, "--check"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert "bit for bit" in res.output
    assert np.array_equal(iio.imread(out), iio.imread(again))
    assert read_manifest(str(again))["params"]["out"] == str(again)


def test_replay_from_a_jpeg_sidecar_and_of_invert_and_prefer(tmp_path, make_image, tiny):
    _, out = _dream(tmp_path, make_image, tiny, "d.jpg")
    assert os.path.isfile(sidecar_path(out))
    assert invoke(["replay", "--trust-model", out, "--check"]).exit_code == 0
    assert os.path.isfile(tmp_path / "d.replay.jpg")
    src = make_image("inv.png", h=32, w=32)
    res = invoke(
        ["invert", src, *tiny, "--layer", "conv2", "--steps", 4, "--size", "image", "-q", "--out", tmp_path / "i.png"]
    )
    assert res.exit_code == 0, res.output
    assert invoke(["replay", "--trust-model", tmp_path / "i.png", "--check"]).exit_code == 0
    res = invoke(
        [
            "prefer",
            *tiny,
            "--layer",
            "conv3",
            "--channel",
            2,
            "--size",
            "32x32",
            "--steps",
            4,
            "-q",
            "--out",
            tmp_path / "p.png",
        ]
    )
    assert res.exit_code == 0, res.output
    assert read_manifest(str(tmp_path / "p.png"))["command"] == "prefer"
    assert invoke(["replay", "--trust-model", tmp_path / "p.png", "--check"]).exit_code == 0


@pytest.mark.parametrize("video", ["progress.gif", "progress.mp4"])
def test_a_progress_video_has_its_own_manifest_and_replays(tmp_path, make_image, tiny, video):
    _, out = _dream(tmp_path, make_image, tiny, "d.png", "--video", tmp_path / video, "--video-every", 1)
    m = read_manifest(str(tmp_path / video))
    assert m["output_role"] == "progress-video" and m != read_manifest(out)
    res = invoke(["replay", "--trust-model", tmp_path / video, "--check"])
    assert res.exit_code == 0 and "bit for bit" in res.output, (res.output, res.exception)
    assert os.path.isfile(tmp_path / f"progress.replay.{video}") and os.path.isfile(tmp_path / "progress.replay.png")


def test_an_interpolations_gif_has_its_own_manifest_and_replays(tmp_path, tiny):
    flags = ["--interpolate", "conv3:1:5", "--batch", 3, "--size", "32x32", "--steps", 3, "-q"]
    res = invoke(["prefer", *tiny, *flags, "--out", tmp_path / "morph.png"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert read_manifest(str(tmp_path / "morph.gif"))["output_role"] == "morph"
    res = invoke(["replay", "--trust-model", tmp_path / "morph.gif", "--check"])
    assert res.exit_code == 0 and "bit for bit" in res.output, (res.output, res.exception)
    # the replay's twin is a GIF of the same frames, beside the re-run's own sheet
    assert iio.imread(tmp_path / "morph.replay.gif", index=None).shape[0] == 4


def test_replay_notices_a_different_result(tmp_path, make_image, tiny):
    _, out = _dream(tmp_path, make_image, tiny)
    img = iio.imread(out)
    img[0, 0] = 255 - img[0, 0]
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    with Image.open(out) as im:
        info = PngInfo()
        info.add_itxt("cnnvis", im.text["cnnvis"])
    Image.fromarray(img).save(out, pnginfo=info)
    res = invoke(["replay", "--trust-model", out, "--check"])
    assert res.exit_code == 1 and "differs" in res.stderr and "in 1 pixels" in res.stderr


def test_replay_bad_input(tmp_path, make_image, tiny):
    plain = make_image("plain.png")
    assert_one_line_error(invoke(["replay", "--trust-model", plain]), "carries no cnnvis manifest")
    assert_one_line_error(invoke(["replay", "--trust-model", tmp_path / "none.png"]), "image not found")
    src, out = _dream(tmp_path, make_image, tiny, "d.jpg")
    with open(sidecar_path(out), "w") as f:
        f.write('{"format": "cnnvis-manifest/1", "comm')
    assert_one_line_error(invoke(["replay", "--trust-model", out]), "not valid JSON")
    _, out = _dream(tmp_path, make_image, tiny, "e.jpg")
    m = read_manifest(out)
    m["params"]["warp_factor"] = 9
    with open(sidecar_path(out), "w") as f:
        json.dump(m, f)
    assert_one_line_error(invoke(["replay", "--trust-model", out]), "'warp_factor'")
    _, out = _dream(tmp_path, make_image, tiny, "f.jpg")
    iio.imwrite(src, np.zeros((48, 48, 3), np.uint8))  # the input photo changed since
    assert_one_line_error(invoke(["replay", "--trust-model", out]), "changed since the run")
    _, out2 = _dream(tmp_path, make_image, tiny, "g.png")
    assert_one_line_error(invoke(["replay", "--trust-model", out2, "--out", out2]), "would overwrite the input")


def _rewrite_png(out, manifest, img=None):
    """Store ``manifest`` (and ``img``, else the same pixels) in the PNG ``out`` and its sidecar."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    img = iio.imread(out) if img is None else img
    info = PngInfo()
    info.add_itxt("cnnvis", json.dumps(manifest))
    Image.fromarray(img).save(out, pnginfo=info)
    with open(sidecar_path(out), "w") as f:
        json.dump(manifest, f)


def test_replay_names_environment_differences_and_explains_a_mismatch(tmp_path, make_image, tiny):
    _, out = _dream(tmp_path, make_image, tiny)
    m = read_manifest(out)
    m["versions"]["torch"] = "0.9.99"
    m["versions"]["numpy"] = "0.1.2"
    _rewrite_png(out, m)
    res = invoke(["replay", "--trust-model", out, "--out", tmp_path / "r1.png", "--check"])
    assert res.exit_code == 0, (res.output, res.exception)  # the same pixels all the same
    from cnnvis.io.manifest import library_versions

    v = library_versions()
    note = [line for line in res.stderr.splitlines() if line.startswith("note: ")]
    assert note == [
        f"note: recorded with torch 0.9.99 and numpy 0.1.2, running torch {v['torch']} and numpy {v['numpy']}"
    ], res.stderr
    img = iio.imread(out)
    img[0, 0] = 255 - img[0, 0]
    _rewrite_png(out, m, img)
    res = invoke(["replay", "--trust-model", out, "--out", tmp_path / "r2.png", "--check"])
    assert res.exit_code == 1
    assert "note: recorded with torch 0.9.99" in res.stderr
    assert (
        f"differs from {out}: max |difference| " in res.stderr
        and " in 1 pixels; not expected to be bit-identical: " in res.stderr
    )
    assert f"torch 0.9.99 → {v['torch']}, numpy 0.1.2 → {v['numpy']}" in res.stderr
    m["versions"] = read_manifest(str(tmp_path / "r1.png"))["versions"]
    m["device"]["machine"] = "vax"
    _rewrite_png(out, m, img)
    res = invoke(["replay", "--trust-model", out, "--out", tmp_path / "r3.png", "--check"])
    assert res.exit_code == 1 and "note: machine vax -> " in res.stderr and "torch" not in res.stderr
    assert "not expected to be bit-identical: machine vax → " in res.stderr


def test_replay_of_an_unchanged_environment_says_the_difference_is_real(tmp_path, make_image, tiny):
    _, out = _dream(tmp_path, make_image, tiny)
    img = iio.imread(out)
    img[1, 2] = 255 - img[1, 2]
    _rewrite_png(out, read_manifest(out), img)
    res = invoke(["replay", "--trust-model", out, "--check"])
    assert res.exit_code == 1 and "note:" not in res.stderr
    assert "in 1 pixels; expected to be bit-identical" in res.stderr and "the difference is real" in res.stderr


def test_replay_finds_inputs_of_a_missing_scratch_folder(tmp_path, make_image, tiny, monkeypatch):
    import shutil

    scratch, home = tmp_path / "scratch", tmp_path / "home"
    (scratch / "photos").mkdir(parents=True)
    home.mkdir()
    src = make_image("photos.png", h=48, w=48)
    shutil.move(src, scratch / "photos" / "src.png")
    monkeypatch.chdir(scratch)
    res = invoke(
        [
            "dream",
            "photos/src.png",
            *tiny,
            "--layer",
            "conv3",
            "--tile",
            32,
            "--steps",
            3,
            "--octaves",
            2,
            "-q",
            "--seed",
            7,
            "--out",
            home / "d.png",
        ]
    )
    assert res.exit_code == 0, (res.output, res.exception)
    out = str(home / "d.png")
    m = read_manifest(out)
    assert m["cwd"] == str(scratch) and m["params"]["image"] == "photos/src.png"
    # the run happened on another machine: its scratch folder is gone; the photo is here under its relative path
    (home / "photos").mkdir()
    shutil.move(scratch / "photos" / "src.png", home / "photos" / "src.png")
    shutil.rmtree(scratch)
    monkeypatch.chdir(home)
    res = invoke(["replay", "--trust-model", out, "--out", home / "again.png", "--check"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert "bit for bit" in res.output
    assert read_manifest(str(home / "again.png"))["inputs"]["image"]["path"] == str(home / "photos" / "src.png")
    # run from elsewhere: found beside the replayed image
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    res = invoke(["replay", "--trust-model", out, "--out", elsewhere / "again.png", "--check"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert not os.path.exists(elsewhere / "photos")
    # a file at that path with another SHA-256 is not the input
    (elsewhere / "photos").mkdir()
    iio.imwrite(elsewhere / "photos" / "src.png", np.zeros((48, 48, 3), np.uint8))
    os.remove(home / "photos" / "src.png")
    assert_one_line_error(
        invoke(["replay", "--trust-model", out, "--out", elsewhere / "x.png"]), "input image", "is missing"
    )
