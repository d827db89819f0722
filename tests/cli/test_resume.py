"""Checkpoints and ``cnnvis resume``: a real run interrupted as a subprocess finishes bit for bit."""

from __future__ import annotations

import os

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import (
    assert_one_line_error,
    cnnvis_exe,
    interrupt_after_first_step,
    invoke,
    smooth_rgb,
    subprocess_env,
    write_factory_module,
)


@pytest.fixture
def setup(tmp_path, monkeypatch):
    write_factory_module(tmp_path, "ckfactory")
    monkeypatch.syspath_prepend(str(tmp_path))
    src = tmp_path / "src.png"
    iio.imwrite(src, smooth_rgb(64, 64, seed=5))
    return src


def _args(src, out, steps):
    return [
        "dream",
        str(src),
        "--model",
        "ckfactory:factory",
        "--weights",
        "random",
        "--layer",
        "conv3",
        "--tile",
        "32",
        "--octaves",
        "2",
        "--steps",
        str(steps),
        "--jitter",
        "2",
        "--seed",
        "11",
        "--out",
        str(out),
    ]


def test_interrupted_subprocess_resumes_bit_for_bit(tmp_path, setup):
    steps = 300  # 600 steps in all: the Ctrl-C lands long before the end
    straight = tmp_path / "straight.png"
    res = invoke(_args(setup, straight, steps) + ["-q"])
    assert res.exit_code == 0, (res.output, res.exception)
    out = tmp_path / "run.png"
    code, stdout, stderr = interrupt_after_first_step(
        [cnnvis_exe(), *_args(setup, out, steps)], 2 * steps, tmp_path / "err.txt", subprocess_env(tmp_path), tmp_path
    )
    assert code == 130, stderr
    assert "Traceback" not in stderr and b"cnnvis resume" in stdout
    ck = tmp_path / "run.ckpt"
    assert ck.exists() and (tmp_path / "run.interrupted.png").exists() and not out.exists()
    res = invoke(["resume", "--trust-model", ck])
    assert res.exit_code == 0, (res.output, res.exception)
    assert np.array_equal(iio.imread(out), iio.imread(straight))
    assert not ck.exists()  # spent


def test_periodic_checkpoints_and_resume_in_process(tmp_path, setup):
    straight = tmp_path / "straight.png"
    assert invoke(_args(setup, straight, 6) + ["-q"]).exit_code == 0
    # a run that writes a checkpoint every 4 steps and is killed after step 5: resume from step 4
    from cnnvis.io.checkpoint import checkpoint_path

    out = tmp_path / "k.png"
    res = invoke(_args(setup, out, 6) + ["-q", "--checkpoint-every", "4"])
    assert res.exit_code == 0 and not os.path.exists(checkpoint_path(str(out)))  # finished: removed
    import torch

    from cnnvis.pipeline.loop import Render

    saved = {}
    original = Render.run

    def run_then_die(self, callback=None, resume=None):
        def cb(p):
            callback(p)
            if p.step == 5:
                saved["ck"] = os.path.exists(checkpoint_path(str(out)))
                raise RuntimeError("power cut")

        return original(self, cb, resume)

    Render.run = run_then_die
    try:
        res = invoke(_args(setup, out, 6) + ["-q", "--checkpoint-every", "4"])
    finally:
        Render.run = original
    assert res.exit_code != 0 and saved["ck"]
    assert torch.load(checkpoint_path(str(out)), weights_only=True)["state"]["done"] == 4
    out.unlink(missing_ok=True)
    assert invoke(["resume", "--trust-model", checkpoint_path(str(out))]).exit_code == 0
    assert np.array_equal(iio.imread(out), iio.imread(straight))


def test_resume_bad_input(tmp_path, setup):
    assert_one_line_error(invoke(["resume", "--trust-model", tmp_path / "none.ckpt"]), "checkpoint not found")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"\x00" * 100)
    assert_one_line_error(invoke(["resume", "--trust-model", junk]), "cannot read checkpoint")
    import torch

    other = tmp_path / "other.ckpt"
    torch.save({"step": 3}, other)
    assert_one_line_error(invoke(["resume", "--trust-model", other]), "not a cnnvis render checkpoint")
    assert_one_line_error(
        invoke(_args(setup, tmp_path / "x.png", 2) + ["--checkpoint-every", "-1"]), "--checkpoint-every", "x>=0"
    )
