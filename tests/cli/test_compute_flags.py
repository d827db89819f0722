"""--precision, --channels-last and --compile on the command line: recorded, replayed, refused."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch
from conftest import assert_one_line_error, cnnvis_exe, invoke, subprocess_env

from cnnvis.io.manifest import read_manifest, sidecar_path
from cnnvis.models.compute import BEFORE_COMPUTE_SETTINGS, fast_fp16


def _dream(tmp_path, tiny_cli, out, *extra):
    args = ["dream", "--noise", *tiny_cli, "--layer", "conv3", "--final-size", "48x48", "--tile", 32]
    res = invoke([*args, "--steps", 2, "-q", "--out", tmp_path / out, *extra])
    assert res.exit_code == 0, (res.output, res.exception)
    return str(tmp_path / out)


def test_the_manifest_records_the_resolved_compute_settings(tmp_path, tiny_cli):
    out = _dream(tmp_path, tiny_cli, "a.png", "--precision", "bf16", "--channels-last", "on")
    m = read_manifest(out)
    assert m["device"]["compute"] == {
        "precision": "bf16",
        "channels_last": True,
        "compile": False,
        "fold_batchnorm": True,
        "fp32_strided_depthwise": True,
    }
    assert m["config"]["precision"] == "bf16"
    res = invoke(["replay", out, "--check", "--trust-model"])
    assert res.exit_code == 0 and "bit for bit" in res.output, res.output


def test_bf16_dreams_take_more_tiles_a_pass_unless_the_batch_size_is_given(tmp_path, tiny_cli):
    """--batch-size left at its default: DREAM_BF16_BATCH tiles a pass in bf16, recorded and replayed; typed, or in
    float32, as given."""
    from cnnvis.defaults import DREAM_BF16_BATCH

    bf16 = read_manifest(_dream(tmp_path, tiny_cli, "b.png", "--precision", "bf16"))
    assert bf16["params"]["batch_size"] == bf16["config"]["batch_size"] == DREAM_BF16_BATCH
    typed = read_manifest(_dream(tmp_path, tiny_cli, "t.png", "--precision", "bf16", "--batch-size", 4))
    assert typed["params"]["batch_size"] == typed["config"]["batch_size"] == 4
    fp32 = read_manifest(_dream(tmp_path, tiny_cli, "f.png", "--precision", "fp32"))
    assert fp32["params"]["batch_size"] == fp32["config"]["batch_size"] == 4
    res = invoke(["replay", str(tmp_path / "b.png"), "--check", "--trust-model"])
    assert res.exit_code == 0 and "bit for bit" in res.output, res.output


def test_a_manifest_from_before_the_settings_replays_in_float32(tmp_path, tiny_cli):
    """Runs recorded before --precision existed ran in float32 with contiguous weights; replaying
    them under today's defaults (bf16 and channels-last where the CPU has them) would not match."""
    out = _dream(tmp_path, tiny_cli, "old.jpg", "--precision", "fp32", "--channels-last", "off")
    with open(sidecar_path(out)) as f:
        m = json.load(f)
    for key in BEFORE_COMPUTE_SETTINGS:
        del m["params"][key], m["config"][key]
    del m["device"]["compute"]
    with open(sidecar_path(out), "w") as f:
        json.dump(m, f)
    res = invoke(["replay", out, "--check", "--trust-model"])
    assert res.exit_code == 0 and "bit for bit" in res.output, res.output


@pytest.mark.skipif(fast_fp16(torch.device("cpu")), reason="this CPU computes float16 natively")
def test_fp16_on_this_cpu_is_one_line(tmp_path, tiny_cli):
    args = ["dream", "--noise", *tiny_cli, "--layer", "conv3", "--final-size", "48x48", "--steps", 1]
    res = invoke([*args, "--precision", "fp16", "--out", tmp_path / "x.png"])
    assert_one_line_error(res, "--precision fp16", "--precision bf16 or auto")
    assert not (tmp_path / "x.png").exists()


def test_a_bad_precision_is_one_line(tmp_path, tiny_cli):
    res = invoke(["dream", "--noise", *tiny_cli, "--precision", "fp8", "--out", tmp_path / "x.png"])
    assert_one_line_error(res, "fp8", "fp32")


def test_compile_without_a_compiler_falls_back_with_one_note(tmp_path):
    """The embedded model, compiled in a fresh process (inductor reads $CXX at import); the tiny
    CNN would not do: its forward ends in the hook that stops it, so dynamo compiles none of it."""
    out = str(tmp_path / "c.png")
    env = dict(subprocess_env(), CXX=str(tmp_path / "no-such-compiler"))
    res = subprocess.run(
        [cnnvis_exe(), "dream", "--noise", "--final-size", "64x64", "--steps", "2", "-q", "--compile", "--out", out],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    notes = [line for line in res.stderr.splitlines() if line.startswith("note: --compile failed")]
    assert len(notes) == 1 and notes[0].endswith("ran uncompiled"), res.stderr[-3000:]
    assert "compiler" in notes[0] and "Traceback" not in res.stderr
    assert read_manifest(out)["device"]["compute"]["compile"] is False


def test_a_bf16_manifest_from_before_the_float32_strided_depthwise_replays_without_it(tmp_path):
    """A bf16 run of Lite0 recorded before the switch existed ran its strided depthwise
    convolutions in bf16: replay must do the same to match bit for bit."""
    out = tmp_path / "old.jpg"  # a JPEG: its manifest is the sidecar alone
    args = ["dream", "--noise", "--layer", "blocks.3", "--final-size", "64x64", "--steps", 2, "--precision", "bf16"]
    res = invoke([*args, "-q", "--out", out, "--fp32-strided-depthwise", "off"])
    assert res.exit_code == 0, (res.output, res.exception)
    with open(sidecar_path(str(out))) as f:
        m = json.load(f)
    assert m["device"]["compute"]["fp32_strided_depthwise"] is False
    del m["params"]["fp32_strided_depthwise"], m["config"]["fp32_strided_depthwise"]
    del m["device"]["compute"]["fp32_strided_depthwise"]
    with open(sidecar_path(str(out)), "w") as f:
        json.dump(m, f)
    res = invoke(["replay", str(out), "--check"])
    assert res.exit_code == 0 and "bit for bit" in res.output, res.output
