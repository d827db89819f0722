"""Replaying or resuming a file from a stranger is as safe as viewing it: every recorded value is
data. A recorded model that runs code loads only with --trust-model, recorded output paths land
beside the replay's own output, a recorded preset is not re-read, and a damaged or ill-typed
manifest or checkpoint is one line."""

from __future__ import annotations

import json
import os
import sys

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import assert_one_line_error, invoke

from cnnvis.io.manifest import read_manifest, sidecar_path


@pytest.fixture
def tiny(factory_module):
    return ["--model", f"{factory_module}:factory", "--weights", "random"]


@pytest.fixture
def made(tmp_path, make_image, tiny):
    """A real dream (its PNG with manifest) to tamper with."""
    src = make_image("src.png", h=40, w=40)
    out = tmp_path / "made" / "d.png"
    out.parent.mkdir()
    res = invoke(["dream", src, *tiny, "--layer", "conv3", "--steps", 2, "--octaves", 1, "-q", "--out", out])
    assert res.exit_code == 0, (res.output, res.exception)
    return str(out)


def _plant(out: str, manifest: dict) -> None:
    """Put ``manifest`` into the PNG ``out`` (its text chunk) as a crafted file would carry it."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    img = iio.imread(out)
    info = PngInfo()
    info.add_itxt("cnnvis", json.dumps(manifest))
    Image.fromarray(img).save(out, pnginfo=info)
    if os.path.exists(sidecar_path(out)):
        os.remove(sidecar_path(out))


def test_a_recorded_factory_is_never_imported_without_trust(tmp_path, made, monkeypatch):
    # a module whose import leaves a marker, on the import path: what "run that file's code" means
    evil_dir = tmp_path / "evil"
    evil_dir.mkdir()
    marker = tmp_path / "marker"
    (evil_dir / "evil_mod_19.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef factory():\n    return None\n")
    monkeypatch.syspath_prepend(str(evil_dir))
    for model in ("evil_mod_19:factory", "os:system", "tempfile:mkdtemp"):
        m = read_manifest(made)
        m["params"]["model"] = model
        _plant(made, m)
        line = assert_one_line_error(invoke(["replay", made]), f"the Python factory '{model}'", "--trust-model")
        assert "imports module" in line
    assert not marker.exists() and "evil_mod_19" not in sys.modules
    # with the flag the user has chosen to run it: the factory is imported, and its bad result is one line
    m["params"]["model"] = "evil_mod_19:factory"
    _plant(made, m)
    res = invoke(["replay", made, "--trust-model"])
    assert marker.exists() and res.exit_code == 2 and "expected a torch.nn.Module" in res.stderr


def test_a_recorded_model_file_needs_trust_too(tmp_path, made):
    for model in (str(tmp_path / "net.pt"), str(tmp_path / "deploy.prototxt")):
        m = read_manifest(made)
        m["params"]["model"] = model
        _plant(made, m)
        assert_one_line_error(invoke(["replay", made]), "--trust-model", model)


def test_a_recorded_video_path_elsewhere_is_written_beside_the_replay(tmp_path, made):
    elsewhere = tmp_path / "some" / "where"
    elsewhere.mkdir(parents=True)
    holiday = elsewhere / "holiday.gif"
    holiday.write_bytes(b"GIF89a my holiday")
    m = read_manifest(made)
    m["params"]["video"] = str(holiday)
    m["params"]["save_every"] = 1
    _plant(made, m)
    before = set(os.listdir(tmp_path))
    res = invoke(["replay", made, "--trust-model"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert holiday.read_bytes() == b"GIF89a my holiday"  # untouched
    folder = os.path.dirname(made)
    assert os.path.isfile(os.path.join(folder, "d.replay.holiday.gif"))
    assert set(os.listdir(tmp_path)) == before  # nothing written outside the replayed file's folder


def test_a_recorded_preset_is_not_read_again(tmp_path, made):
    evil = tmp_path / "evil.py"
    evil.write_text("raise SystemExit('ran')\n")
    m = read_manifest(made)
    m["preset"] = str(evil)  # where a preset supplied the values: informative only
    _plant(made, m)
    assert invoke(["replay", made, "--trust-model", "--check"]).exit_code == 0
    m["params"]["preset"] = str(evil)  # as a parameter: not one the command takes from a manifest
    _plant(made, m)
    assert_one_line_error(invoke(["replay", made, "--trust-model"]), "'preset'", "does not know")


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda m: m["params"].update(steps="many"), "bad value for 'steps'"),
        (lambda m: m["params"].update(steps=float("inf")), "bad value for 'steps'"),
        (lambda m: m["params"].update(steps=True), "bad value for 'steps'"),
        (lambda m: m["params"].update(lr=[1, 2]), "bad value for 'lr'"),
        (lambda m: m.update(params=[1, 2]), "params of type list"),
        (lambda m: m.update(inputs={"image": "nope"}), "without a path and a SHA-256"),
        (lambda m: m.update(device="cpu"), "device of type str"),
        (lambda m: m.update(output_label="../../../etc/x"), "not a plain name"),
        (lambda m: m.update(command="rm"), "names command 'rm'"),
        (lambda m: m.update(command=["dream"]), "command of type list"),
    ],
)
def test_ill_typed_manifests_are_one_line(made, edit, needle):
    m = read_manifest(made)
    edit(m)
    _plant(made, m)
    assert_one_line_error(invoke(["replay", made, "--trust-model"]), needle)


def test_a_huge_thread_count_is_not_believed(made):
    m = read_manifest(made)
    m["device"]["threads"] = 10**9
    _plant(made, m)
    res = invoke(["replay", made, "--trust-model", "--check"])
    assert res.exit_code == 0, (res.output, res.exception)


def test_deeply_nested_and_huge_sidecars_are_one_line(tmp_path):
    img = tmp_path / "x.jpg"
    iio.imwrite(img, np.zeros((8, 8, 3), np.uint8))
    with open(sidecar_path(str(img)), "w") as f:
        f.write("[" * 100_000 + "]" * 100_000)
    assert_one_line_error(invoke(["replay", img]), "nested too deeply")
    with open(sidecar_path(str(img)), "wb") as f:
        f.write(b"\xff\xfe\x00garbage")
    assert_one_line_error(invoke(["replay", img]), "not UTF-8")


def test_a_sidecar_of_another_write_is_noticed(tmp_path, tiny, make_image):
    src = make_image("s.png", h=40, w=40)
    a, b = tmp_path / "a.jpg", tmp_path / "b.jpg"
    for out, steps in ((a, 1), (b, 3)):
        res = invoke(["dream", src, *tiny, "--layer", "conv3", "--steps", steps, "--octaves", 1, "-q", "--out", out])
        assert res.exit_code == 0, res.output
    # b's picture with a's manifest: what two writers racing used to leave
    assert not np.array_equal(iio.imread(a), iio.imread(b))
    os.replace(b, a)
    assert_one_line_error(invoke(["replay", a, "--trust-model"]), "does not describe")


def test_a_checkpoint_with_damaged_floats_is_one_line_and_resume_writes_beside_it(tmp_path, tiny, make_image):
    import torch

    src = make_image("s.png", h=40, w=40)
    out = tmp_path / "run" / "r.png"
    out.parent.mkdir()
    args = ["dream", src, *tiny, "--layer", "conv3", "--steps", 4, "--octaves", 1, "-q", "--checkpoint-every", 2]
    from cnnvis.pipeline.loop import Render

    original = Render.run

    def die_after_two(self, callback=None, resume=None):
        def cb(p):
            callback(p)
            if p.step == 3:
                raise RuntimeError("killed")  # the checkpoint of step 2 is on disk

        return original(self, cb, resume)

    Render.run = die_after_two
    try:
        invoke([*args, "--out", out])
    finally:
        Render.run = original
    ck = out.parent / "r.ckpt"
    assert ck.exists()
    moved = tmp_path / "moved"
    moved.mkdir()
    os.replace(ck, moved / "r.ckpt")
    # resume writes beside the checkpoint, not into the recorded folder
    assert invoke(["resume", moved / "r.ckpt", "--trust-model"]).exit_code == 0
    assert (moved / "r.png").exists() and not out.exists()
    assert_one_line_error(invoke(["resume", moved / "r.ckpt"]), "checkpoint not found")  # spent
    # a damaged copy: one float changed
    invoke([*args, "--out", out])
    Render.run = die_after_two
    try:
        invoke([*args, "--out", out])
    finally:
        Render.run = original
    assert_one_line_error(invoke(["resume", ck]), "the Python factory", "--trust-model")
    ck_data = torch.load(ck, weights_only=True)
    state = ck_data["state"]
    tensor = next(v for v in _tensors(state))
    tensor[(0,) * tensor.dim()] += 1.0
    torch.save(ck_data, ck)
    assert_one_line_error(invoke(["resume", ck, "--trust-model"]), "is damaged")


def _tensors(value):
    import torch

    if isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel():
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)
