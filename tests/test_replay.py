"""Manifests on every output (PNG text chunk + sidecar) and ``cnnvis replay`` reproducing them bit for bit."""

from __future__ import annotations

import hashlib
import json
import os

import imageio.v3 as iio
import numpy as np
import pytest

from cnnvis.manifest import FORMAT, read_manifest, sidecar_path

from conftest import assert_one_line_error, invoke


@pytest.fixture
def tiny(factory_module):
    return ["--model", f"{factory_module}:factory", "--weights", "random"]


def _dream(tmp_path, make_image, tiny, out="d.png", *extra):
    src = make_image("src.png", h=48, w=48)
    res = invoke(["dream", src, *tiny, "--layer", "conv3", "--tile", 32, "--steps", 3, "--octaves", 2, "-q", "--seed", 7, "--out", tmp_path / out, *extra])
    assert res.exit_code == 0, (res.output, res.exception)
    return src, str(tmp_path / out)


def test_manifest_in_png_text_chunk_and_sidecar(tmp_path, make_image, tiny):
    src, out = _dream(tmp_path, make_image, tiny)
    from PIL import Image

    with Image.open(out) as im:
        chunk = json.loads(im.text["cnnvis"])
    with open(sidecar_path(out)) as f:
        side = json.load(f)
    assert chunk == side == read_manifest(out)
    m = chunk
    assert m["format"] == FORMAT and m["command"] == "dream" and m["status"] == "complete"
    assert m["seed"] == 7 and m["config"]["seed"] == 7 and m["config"]["steps"] == 3 and m["params"]["octaves"] == 2
    assert m["model"]["name"].endswith(":factory") and m["model"]["weights_sha256"] is None  # random weights
    assert m["inputs"]["image"] == {"path": os.path.abspath(src), "sha256": hashlib.sha256(open(src, "rb").read()).hexdigest()}
    assert m["versions"]["torch"] and m["versions"]["cnnvis"] and m["device"]["type"] == "cpu" and m["device"]["threads"] >= 1


def test_replay_reproduces_dream_bit_for_bit(tmp_path, make_image, tiny):
    _, out = _dream(tmp_path, make_image, tiny)
    again = tmp_path / "again.png"
    res = invoke(["replay", out, "--out", again, "--check"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert "bit for bit" in res.output
    assert np.array_equal(iio.imread(out), iio.imread(again))
    assert read_manifest(str(again))["params"]["out"] == str(again)


def test_replay_from_a_jpeg_sidecar_and_of_invert_and_prefer(tmp_path, make_image, tiny):
    _, out = _dream(tmp_path, make_image, tiny, "d.jpg")
    assert os.path.isfile(sidecar_path(out))
    assert invoke(["replay", out, "--check"]).exit_code == 0
    assert os.path.isfile(tmp_path / "d.replay.jpg")
    src = make_image("inv.png", h=32, w=32)
    res = invoke(["invert", src, *tiny, "--layer", "conv2", "--steps", 4, "--size", "image", "-q", "--out", tmp_path / "i.png"])
    assert res.exit_code == 0, res.output
    assert invoke(["replay", tmp_path / "i.png", "--check"]).exit_code == 0
    res = invoke(["prefer", *tiny, "--layer", "conv3", "--channel", 2, "--size", "32x32", "--steps", 4, "-q", "--out", tmp_path / "p.png"])
    assert res.exit_code == 0, res.output
    assert read_manifest(str(tmp_path / "p.png"))["command"] == "prefer"
    assert invoke(["replay", tmp_path / "p.png", "--check"]).exit_code == 0


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
    res = invoke(["replay", out, "--check"])
    assert res.exit_code == 1 and "differs" in res.stderr and "in 1 pixels" in res.stderr


def test_replay_bad_input(tmp_path, make_image, tiny):
    plain = make_image("plain.png")
    assert_one_line_error(invoke(["replay", plain]), "carries no cnnvis manifest")
    assert_one_line_error(invoke(["replay", tmp_path / "none.png"]), "image not found")
    src, out = _dream(tmp_path, make_image, tiny, "d.jpg")
    with open(sidecar_path(out), "w") as f:
        f.write('{"format": "cnnvis-manifest/1", "comm')
    assert_one_line_error(invoke(["replay", out]), "not valid JSON")
    _, out = _dream(tmp_path, make_image, tiny, "e.jpg")
    m = read_manifest(out)
    m["params"]["warp_factor"] = 9
    with open(sidecar_path(out), "w") as f:
        json.dump(m, f)
    assert_one_line_error(invoke(["replay", out]), "'warp_factor'")
    _, out = _dream(tmp_path, make_image, tiny, "f.jpg")
    iio.imwrite(src, np.zeros((48, 48, 3), np.uint8))  # the input photo changed since
    assert_one_line_error(invoke(["replay", out]), "changed since the run")
    _, out2 = _dream(tmp_path, make_image, tiny, "g.png")
    assert_one_line_error(invoke(["replay", out2, "--out", out2]), "is the image being replayed")
