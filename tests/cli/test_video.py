"""``cnnvis dream/invert VIDEO``: streaming frames, flow-guided coherence, audio, Ctrl-C and resume, bad input."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import (
    assert_one_line_error,
    cnnvis_exe,
    interrupt_after_first_step,
    invoke,
    pan_frames,
    popen_sigint_default,
    subprocess_env,
    write_clip,
    write_factory_module,
)

from cnnvis.errors import InputError
from cnnvis.io.video import VideoReader, probe
from cnnvis.recipes.frames import VideoRun


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """The tiny CNN as a factory module importable in process and by subprocesses run in tmp_path."""
    write_factory_module(tmp_path, "vidfactory")
    monkeypatch.syspath_prepend(str(tmp_path))
    return [
        "--model",
        "vidfactory:factory",
        "--weights",
        "random",
        "--layer",
        "conv3",
        "--tile",
        "32",
        "--octaves",
        "1",
        "--seed",
        "3",
    ]


def _pngs(folder) -> np.ndarray:
    names = sorted(n for n in os.listdir(folder) if n.startswith("frame_"))
    return np.stack([iio.imread(os.path.join(folder, n)) for n in names])


def test_dream_mp4_streams_frames_and_keeps_rate_and_audio(tmp_path, tiny):
    src = write_clip(tmp_path / "clip.mp4", pan_frames(5), fps=12, audio=True)
    out = tmp_path / "dreamed.mp4"
    res = invoke(["dream", src, *tiny, "--steps", 2, "-q", "--out", out])
    assert res.exit_code == 0, (res.output, res.exception)
    info = probe(str(out))
    assert (info.fps, info.frames, info.size, info.audio) == (12, 5, (48, 64), "aac")
    with VideoReader(str(out)) as r:
        dreamed = np.stack([f.copy() for f in r])
    with VideoReader(src) as r:
        original = np.stack([f.copy() for f in r])
    assert np.abs(dreamed.astype(int) - original).mean() > 2  # dreamed, not copied
    manifest = json.loads((tmp_path / "dreamed.mp4.manifest.json").read_text())
    assert (
        manifest["command"] == "dream"
        and manifest["params"]["flow"] is None
        and manifest["params"]["temporal"] is None
        and manifest["status"] == "complete"
    )
    assert sorted(os.listdir(tmp_path)) == [
        "clip.mp4",
        "clip.tone.m4a",
        "dreamed.mp4",
        "dreamed.mp4.manifest.json",
        "vidfactory.py",
    ]


def _temporal_error(frames: np.ndarray, v: int) -> float:
    """Mean |out_t - out_{t-1} moved by the true pan| over the pixels frame t-1 also shows (0..255)."""
    return float(
        np.mean([np.abs(frames[t][:, :-v].astype(int) - frames[t - 1][:, v:]).mean() for t in range(1, len(frames))])
    )


def test_flow_guided_dream_follows_the_pan_where_the_constant_blend_smears(tmp_path, tiny):
    v = 3
    src = write_clip(tmp_path / "pan.mp4", pan_frames(6, v=v))
    errors = {}
    for flow in ("dis", "none"):
        out = tmp_path / flow
        res = invoke(["dream", src, *tiny, "--steps", 4, "--flow", flow, "--blend", 0.85, "-q", "--out", f"{out}/"])
        assert res.exit_code == 0, (res.output, res.exception)
        errors[flow] = _temporal_error(_pngs(out), v)
    assert errors["dis"] < 0.5 * errors["none"], errors


def test_a_still_scene_dreams_into_a_still_video(tmp_path, tiny):
    """The scene holds still but the camera's noise does not (here +-2 grey levels a frame): a dream
    amplifies such differences into new patterns every frame, unless the temporal loss holds it."""
    rng = np.random.default_rng(1)
    still = pan_frames(1)[0].astype(int)
    frames = np.stack([np.clip(still + rng.integers(-2, 3, still.shape), 0, 255) for _ in range(6)]).astype(np.uint8)
    src = write_clip(tmp_path / "still.gif", frames)
    change = {}
    for name, flags in (
        ("none", ["--flow", "none"]),
        ("dis", ["--flow", "dis"]),
        ("dis held", ["--flow", "dis", "--temporal-weight", "50"]),
    ):
        out = tmp_path / name.replace(" ", "_")
        res = invoke(["dream", src, *tiny, "--steps", 6, *flags, "--blend", 0.85, "-q", "--out", f"{out}/"])
        assert res.exit_code == 0, (res.output, res.exception)
        got = _pngs(out).astype(int)
        change[name] = float(np.abs(got[2:] - got[1:-1]).mean())  # frame to frame, after the first carry
    assert change["dis held"] < change["dis"] < 0.8 * change["none"], change
    assert change["dis held"] < 0.3 * change["none"], change


def test_png_frames_output_and_bad_folder(tmp_path, tiny):
    src = write_clip(tmp_path / "c.gif", pan_frames(3))
    res = invoke(["dream", src, *tiny, "--steps", 1, "--flow", "farneback", "-q", "--out", f"{tmp_path / 'frames'}/"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert sorted(os.listdir(tmp_path / "frames")) == ["frame_000001.png", "frame_000002.png", "frame_000003.png"]
    assert (tmp_path / "frames.manifest.json").exists() and _pngs(tmp_path / "frames").shape == (3, 48, 64, 3)
    assert_one_line_error(
        invoke(["dream", src, *tiny, "--steps", 1, "-q", "--out", f"{tmp_path / 'frames'}/"]), "already holds frame_"
    )


def _dream_args(src, out, steps=80):
    return [
        "dream",
        str(src),
        "--model",
        "vidfactory:factory",
        "--weights",
        "random",
        "--layer",
        "conv3",
        "--tile",
        "32",
        "--octaves",
        "1",
        "--seed",
        "3",
        "--steps",
        str(steps),
        "--out",
        str(out),
    ]


def test_ctrl_c_then_resume_equals_the_uninterrupted_run_bit_for_bit(tmp_path, tiny, monkeypatch):
    src = write_clip(tmp_path / "pan.mp4", pan_frames(6), audio=True)
    res = invoke(_dream_args(src, f"{tmp_path / 'straight'}/") + ["-q"])
    assert res.exit_code == 0, (res.output, res.exception)
    straight = _pngs(tmp_path / "straight")
    code, stdout, stderr = interrupt_after_first_step(
        [cnnvis_exe(), *_dream_args(src, "run/")], 6, tmp_path / "err.txt", subprocess_env(tmp_path), tmp_path
    )
    assert code == 130, stderr
    assert "Traceback" not in stderr and b"cnnvis resume run.ckpt" in stdout and b"frames written to run/" in stdout
    done = len(os.listdir(tmp_path / "run"))
    assert 1 <= done < 6 and np.array_equal(_pngs(tmp_path / "run"), straight[:done])
    monkeypatch.chdir(tmp_path)  # where the run was started: resume names the output as the run did
    res = invoke(["resume", "--trust-model", "run.ckpt"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert f"wrote run{os.sep} (6 frames)" in res.output, res.output
    assert np.array_equal(_pngs(tmp_path / "run"), straight)
    assert not (tmp_path / "run.ckpt").exists()  # spent


def test_ctrl_c_inside_a_frame_resumes_from_the_step_it_reached(tmp_path, tiny, sigint_at_default):
    """A real SIGINT to this process at step 5 of frame 3 (sent from the progress callback, so
    it lands at a known step): the checkpoint holds frame 3's render state, and the resumed run
    finishes that frame from step 6 with the same pixels as an uninterrupted run."""
    import torch

    from cnnvis.pipeline.loop import Render

    src = write_clip(tmp_path / "pan.gif", pan_frames(4))
    res = invoke(_dream_args(src, f"{tmp_path / 'straight'}/", 8) + ["-q"])
    assert res.exit_code == 0, (res.output, res.exception)
    original, frames_started = Render.run, []

    def run_and_press_ctrl_c(self, callback=None, resume=None):
        frames_started.append(1)

        def cb(p):
            if len(frames_started) == 3 and p.step == 5:
                os.kill(os.getpid(), signal.SIGINT)
            callback(p)

        return original(self, cb, resume)

    Render.run = run_and_press_ctrl_c
    try:
        res = invoke(_dream_args(src, f"{tmp_path / 'run'}/", 8) + ["-q"])
    finally:
        Render.run = original
    assert res.exit_code == 130, (res.output, res.exception)
    state = torch.load(tmp_path / "run.ckpt", weights_only=True)["state"]
    assert state["next"] == 2 and state["render"]["done"] == 5 and len(os.listdir(tmp_path / "run")) == 2
    assert invoke(["resume", "--trust-model", tmp_path / "run.ckpt"]).exit_code == 0
    assert np.array_equal(_pngs(tmp_path / "run"), _pngs(tmp_path / "straight"))


def test_killed_run_goes_on_from_its_last_checkpoint_into_one_mp4(tmp_path, tiny):
    """kill -9 leaves no chance to save anything: --checkpoint-every N frames is what remains."""
    src = write_clip(tmp_path / "pan.mp4", pan_frames(6), fps=8, audio=True)
    res = invoke(_dream_args(src, tmp_path / "straight.mp4", 30) + ["-q"])
    assert res.exit_code == 0
    err_path = tmp_path / "err.txt"
    with open(err_path, "wb") as err:
        proc = popen_sigint_default(
            [cnnvis_exe(), *_dream_args(src, "run.mp4", 30), "--checkpoint-every", "2"],
            stdout=subprocess.PIPE,
            stderr=err,
            env=subprocess_env(tmp_path),
            cwd=tmp_path,
        )
        deadline = time.monotonic() + 120
        while (
            time.monotonic() < deadline
            and proc.poll() is None
            and not re.search(r"\b3/6\b", err_path.read_text(errors="replace"))
        ):
            time.sleep(0.05)
        assert proc.poll() is None, err_path.read_text()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (tmp_path / "run.ckpt").exists() and not (tmp_path / "run.mp4").exists()
    res = invoke(["resume", "--trust-model", tmp_path / "run.ckpt"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert "wrote " in res.output and "(6 frames)" in res.output, res.output
    info = probe(str(tmp_path / "run.mp4"))
    assert (info.frames, info.fps, info.audio) == (6, 8, "aac")
    with VideoReader(str(tmp_path / "run.mp4")) as r, VideoReader(str(tmp_path / "straight.mp4")) as s:
        got, want = np.stack([f.copy() for f in r]), np.stack([f.copy() for f in s])
    # the same frames, though encoded in three segments instead of one (H.264 decides differently): far
    # closer to the uninterrupted run's frames than those are to their neighbours
    assert np.abs(got.astype(int) - want).mean() < 0.3 * np.abs(want[1:].astype(int) - want[:-1]).mean()
    assert not (tmp_path / "run.parts").exists() and not (tmp_path / "run.ckpt").exists()


def test_invert_a_movie_from_the_flow_warped_previous_reconstruction(tmp_path, tiny):
    src = write_clip(tmp_path / "pan.gif", pan_frames(4))
    res = invoke(
        [
            "invert",
            src,
            "--layer",
            "conv3",
            "--model",
            "vidfactory:factory",
            "--weights",
            "random",
            "--size",
            "32x32",
            "--steps",
            3,
            "--flow",
            "dis",
            "-q",
            "--out",
            f"{tmp_path / 'inv'}/",
        ]
    )
    assert res.exit_code == 0, (res.output, res.exception)
    assert _pngs(tmp_path / "inv").shape == (4, 32, 32, 3)
    assert "mean pixel correlation over the 4 frames rendered" in res.output
    assert_one_line_error(
        invoke(
            [
                "invert",
                src,
                "--layer",
                "conv3",
                "--model",
                "vidfactory:factory",
                "--video-init",
                "noise",
                "--flow",
                "dis",
                "--out",
                tmp_path / "x.gif",
            ]
        ),
        "--video-init noise",
        "drop one",
    )


def test_truncated_input_keeps_and_names_the_frames_done(tmp_path, tiny):
    frames = np.stack([pan_frames(1, seed=s)[0] for s in range(20)])
    data = open(write_clip(tmp_path / "whole.mp4", frames, faststart=True), "rb").read()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    res = invoke(["dream", cut, *tiny, "--steps", 1, "-q", "--out", tmp_path / "d.mp4"])
    line = assert_one_line_error(res, "corrupt or truncated after frame", "frames done are in", "d.interrupted.mp4")
    kept = probe(str(tmp_path / "d.interrupted.mp4")).frames
    assert 0 < kept < 20 and f"the {kept} frames done" in line


def test_video_bad_input(tmp_path, tiny, make_image):
    import imageio_ffmpeg

    tone = tmp_path / "tone.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "sine", "-t", "0.5", str(tone)],
        check=True,
    )
    assert_one_line_error(invoke(["dream", tone, *tiny, "-q", "--out", tmp_path / "o.mp4"]), "has no frames")
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 64)
    assert_one_line_error(
        invoke(["dream", tmp_path / "junk.mp4", *tiny, "-q", "--out", tmp_path / "o.mp4"]),
        "cannot read video",
        "junk.mp4",
    )
    photo = make_image("p.png")
    assert_one_line_error(
        invoke(["dream", photo, *tiny, "--flow", "dis", "-q", "--out", tmp_path / "o.png"]),
        "--flow, --blend and --temporal-weight apply to a video input",
    )
    assert_one_line_error(
        invoke(["invert", photo, "--layer", "conv3", "--blend", "0.5", "-q", "--out", tmp_path / "o.png"]),
        "apply to a video input",
        "p.png",
    )
    clip = write_clip(tmp_path / "c.mp4", pan_frames(2), audio=True)
    assert_one_line_error(
        invoke(["dream", clip, *tiny, "--blend", "1.5", "-q", "--out", tmp_path / "o.mp4"]), "--blend", "1.5", "0<=x<=1"
    )
    assert_one_line_error(
        invoke(["dream", clip, *tiny, "--flow", "none", "--temporal-weight", "5", "-q", "--out", tmp_path / "o.mp4"]),
        "--temporal-weight 5.0",
        "--flow dis",
    )
    assert_one_line_error(invoke(["dream", clip, *tiny, "-q", "--out", tmp_path / "o.png"]), "must be a video")
    assert_one_line_error(
        invoke(["dream", clip, *tiny, "--checkpoint-every", "-1", "-q", "--out", tmp_path / "o.mp4"]),
        "--checkpoint-every",
        "-1",
    )
    with pytest.raises(InputError, match="--checkpoint-every must be >= 0"):  # the API checks it too
        VideoRun(clip, str(tmp_path / "o.mp4"), -1)
    # a GIF cannot hold the clip's audio: said on one line, and the video is written without it
    res = invoke(["dream", clip, *tiny, "--steps", 1, "-q", "--out", tmp_path / "o.gif"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert res.stderr.count("\n") == 1 and "cannot hold the audio" in res.stderr and "o.gif" in res.stderr
    assert iio.imread(tmp_path / "o.gif", index=None).shape[0] == 2


def test_presets_and_manifests_work_per_frame(tmp_path, tiny):
    src = write_clip(tmp_path / "c.gif", pan_frames(2))
    res = invoke(
        ["dream", src, "--preset", "deepdream-classic", *tiny, "--steps", 1, "-q", "--out", tmp_path / "p.gif"]
    )
    assert res.exit_code == 0, (res.output, res.exception)
    manifest = json.loads((tmp_path / "p.gif.manifest.json").read_text())
    assert (
        manifest["preset"].endswith("deepdream-classic.toml")
        and manifest["params"]["dream_form"] == "meansquare"
        and manifest["params"]["jitter"] == 32
    )
    assert iio.imread(tmp_path / "p.gif", index=None).shape[0] == 2


def test_a_video_inversion_keeps_the_clips_aspect_ratio(tmp_path, tiny):
    """No --size: each 48x64 frame is inverted at its own aspect, the longer side at the model input."""
    src = write_clip(tmp_path / "pan.gif", pan_frames(2))
    args = ["invert", src, "--layer", "conv3", "--model", "vidfactory:factory", "--weights", "random"]
    res = invoke([*args, "--steps", 1, "-q", "--out", f"{tmp_path / 'inv'}/"])
    assert res.exit_code == 0, (res.output, res.exception)
    frames = _pngs(tmp_path / "inv")
    h, w = frames.shape[1:3]
    assert frames.shape[0] == 2 and w > h and abs(h / w - 48 / 64) < 0.05, frames.shape
