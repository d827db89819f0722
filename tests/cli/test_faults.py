"""Faults on a user's machine, each as a real process meets it: a full disk, a file-size limit, a
read-only folder, a kill in the middle of a write, SIGINT and SIGTERM at start-up and mid-step, an
output that is the input. Every failure is one line, nothing earlier is lost, no temporary is left,
and the rerun finishes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import (
    assert_one_line_error,
    cnnvis_exe,
    invoke,
    popen_sigint_default,
    smooth_rgb,
    subprocess_env,
    write_factory_module,
)

from cnnvis.io.files import is_temporary

FACTORY = "faultfactory"


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """A tiny-CNN factory importable by subprocesses and in process, and a small photo."""
    write_factory_module(tmp_path, FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    src = tmp_path / "photo.png"
    iio.imwrite(src, smooth_rgb(48, 48))
    yield src
    sys.modules.pop(FACTORY, None)


def _dream_args(src, out, *extra, quiet=True):
    return [
        "dream",
        str(src),
        "--model",
        f"{FACTORY}:factory",
        "--weights",
        "random",
        "--layer",
        "conv3",
        "--tile",
        "32",
        "--octaves",
        "1",
        "--steps",
        "3",
        *(["-q"] if quiet else []),
        "--out",
        str(out),
        *map(str, extra),
    ]


def _run(args, tmp_path, fsize: int | None = None, timeout: float = 120):
    """Run the installed ``cnnvis ARGS`` (with a file-size limit of ``fsize`` bytes)."""
    cmd = [cnnvis_exe(), *args]
    if fsize is not None:
        # RLIMIT_FSIZE set in a launcher that then becomes cnnvis (exec keeps the limit)
        launcher = (
            f"import os, resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, ({fsize}, {fsize})); "
            "os.execv(sys.argv[1], sys.argv[1:])"
        )
        cmd = [sys.executable, "-c", launcher, *cmd]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=subprocess_env(tmp_path), cwd=tmp_path, timeout=timeout
    )


def _one_line(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


def _no_temporaries(folder):
    left = [n for n in os.listdir(folder) if is_temporary(n)]
    assert not left, left


@pytest.fixture
def small_disk(tmp_path):
    """A 320 kB tmpfs (root may mount one here), else skip: the RLIMIT_FSIZE tests cover the rest."""
    d = tmp_path / "disk"
    d.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", str(d)], capture_output=True).returncode
    ):
        pytest.skip("no tmpfs can be mounted here (not root, or no mount privilege)")
    yield d
    subprocess.run(["umount", "-l", str(d)], capture_output=True)


def _fill(folder) -> str:
    """Fill ``folder``'s filesystem to the last byte; return the filler's path."""
    filler = os.path.join(folder, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_is_one_line_keeps_the_old_output_and_the_rerun_finishes(tmp_path, setup, small_disk):
    out = small_disk / "d.png"
    assert _run(_dream_args(setup, out), tmp_path).returncode == 0
    before = out.read_bytes()
    filler = _fill(small_disk)
    proc = _run(_dream_args(setup, out, "--steps", 5), tmp_path)
    _one_line(proc, str(out), "No space left on device (ENOSPC)", "free some space")
    assert out.read_bytes() == before  # the earlier output is intact
    _no_temporaries(small_disk)
    os.remove(filler)
    assert _run(_dream_args(setup, out, "--steps", 5), tmp_path).returncode == 0
    assert out.read_bytes() != before


def test_an_atlas_into_a_filling_disk_is_one_line_and_the_rerun_finishes(tmp_path, setup, small_disk):
    atlas = small_disk / "atlas"
    args = [
        "atlas",
        "--model",
        f"{FACTORY}:factory",
        "--weights",
        "random",
        "--layer",
        "conv3",
        "--units",
        "0-7",
        "--size",
        "32x32",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "-q",
        "--out",
        str(atlas),
    ]
    # leave room for a few units only
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * (320 * 1024 - 60 * 1024))
    proc = _run(args, tmp_path)
    _one_line(proc, "No space left on device (ENOSPC)")
    os.remove(ballast)
    proc = _run(args, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(n for n in os.listdir(atlas / "conv3") if n.endswith(".png")) == [
        f"unit_{u:04d}.png" for u in range(8)
    ]
    _no_temporaries(atlas / "conv3")


def test_a_file_size_limit_on_the_image_and_on_the_checkpoint_is_one_line(tmp_path, setup):
    out = tmp_path / "big.png"
    proc = _run(_dream_args(setup, out), tmp_path, fsize=1500)  # the PNG with its manifest is larger
    _one_line(proc, str(out), "File too large (EFBIG)", "ulimit -f")
    assert not out.exists()
    _no_temporaries(tmp_path)
    proc = _run(_dream_args(setup, out, "--checkpoint-every", 1), tmp_path, fsize=20000)
    _one_line(proc, "big.ckpt", "(EFBIG)")
    _no_temporaries(tmp_path)


def test_a_read_only_output_folder_is_one_line_before_the_model_loads(tmp_path, setup):
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], capture_output=True
        ).returncode:
            pytest.skip("root, and no read-only mount can be made here")
    else:
        ro.chmod(0o555)
    try:
        started = time.monotonic()
        res = invoke(["dream", "--out", ro / "x.png"])  # the embedded model would take seconds to load
        assert_one_line_error(res, "x.png", "(EROFS)" if os.geteuid() == 0 else "(EACCES)")
        assert time.monotonic() - started < 5
        res = invoke(["atlas", "--layer", "blocks.4", "--out", ro / "atlas"])
        assert_one_line_error(res, "atlas")
        _no_temporaries(ro)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(ro)], capture_output=True)
        else:
            ro.chmod(0o755)


def test_an_output_in_proc_is_one_line():
    assert_one_line_error(invoke(["dream", "--out", "/proc/x.png"]), "/proc/x.png")


def test_the_output_is_never_the_input(tmp_path, setup, monkeypatch):
    photo = tmp_path / "small.png"
    photo.write_bytes(setup.read_bytes())
    before = photo.read_bytes()
    assert_one_line_error(invoke(_dream_args(photo, photo)), "would overwrite the input", "choose another --out")
    os.symlink(photo, tmp_path / "link.png")
    assert_one_line_error(invoke(_dream_args(photo, tmp_path / "link.png")), "would overwrite the input")
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(invoke(_dream_args("small.png", "./sub/../small.png")), "would overwrite the input")
    assert_one_line_error(
        invoke(_dream_args(photo, tmp_path / "o.png", "--video", photo)), "--video", "would overwrite"
    )
    assert photo.read_bytes() == before


def test_a_video_never_replaces_its_input(tmp_path, setup):
    from conftest import write_clip

    clip = tmp_path / "clip.gif"
    write_clip(clip, np.stack([smooth_rgb(32, 32)] * 3))
    before = clip.read_bytes()
    assert_one_line_error(invoke(["dream", clip, "--out", clip]), "would overwrite the input")
    assert clip.read_bytes() == before


def _start(args, tmp_path, err):
    return popen_sigint_default(
        [cnnvis_exe(), *args], stdout=subprocess.PIPE, stderr=err, env=subprocess_env(tmp_path), cwd=tmp_path
    )


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_at_start_up_is_one_line(tmp_path, setup, sig, code):
    # click's, then torch's import: the interpreter itself takes 40-60 ms to reach cnnvis's first line (its site and
    # the editable install's finder), before which a signal meets Python's own handlers, not cnnvis's
    for delay in (0.15, 0.4):
        with open(tmp_path / "err.txt", "wb") as err:
            proc = _start(_dream_args(setup, tmp_path / "x.png"), tmp_path, err)
            time.sleep(delay)
            proc.send_signal(sig)
            proc.communicate(timeout=120)
        text = (tmp_path / "err.txt").read_text()
        assert proc.returncode == code, text
        assert "Traceback" not in text and "nothing written" in text
        assert not (tmp_path / "x.png").exists()


def test_sigterm_mid_step_writes_a_checkpoint_exits_143_and_resumes_bit_for_bit(tmp_path, setup):
    steps = 400
    straight = tmp_path / "straight.png"
    args = lambda out, quiet=False: _dream_args(setup, out, "--steps", steps, "--jitter", 2, "--seed", 5, quiet=quiet)  # noqa: E731
    res = invoke(args(straight, quiet=True))
    assert res.exit_code == 0, res.output
    out = tmp_path / "run.png"
    err_path = tmp_path / "err.txt"
    with open(err_path, "wb") as err:
        proc = _start(args(out), tmp_path, err)
        deadline = time.monotonic() + 90
        while (
            time.monotonic() < deadline and "/400" not in err_path.read_text(errors="replace") and proc.poll() is None
        ):
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)  # what a scheduler, timeout or systemctl stop sends
        stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, err_path.read_text()
    assert b"cnnvis resume" in stdout and (tmp_path / "run.ckpt").exists()
    res = invoke(["resume", tmp_path / "run.ckpt", "--trust-model"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert np.array_equal(iio.imread(out), iio.imread(straight))


def test_kill_9_at_a_checkpoint_then_resume_equals_the_straight_run(tmp_path, setup):
    straight = tmp_path / "straight.png"
    args = lambda out, *x: _dream_args(setup, out, "--steps", 300, "--seed", 3, *x)  # noqa: E731
    assert invoke(args(straight)).exit_code == 0
    out = tmp_path / "k.png"
    ck = tmp_path / "k.ckpt"
    with open(tmp_path / "err.txt", "wb") as err:
        proc = _start(args(out, "--checkpoint-every", 20), tmp_path, err)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not ck.exists() and proc.poll() is None:
            time.sleep(0.02)
        proc.kill()  # SIGKILL: nothing runs after it
        proc.wait()
    assert ck.exists() and not out.exists()
    res = invoke(["resume", ck, "--trust-model"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert np.array_equal(iio.imread(out), iio.imread(straight))
    _no_temporaries(tmp_path)


def test_a_write_killed_mid_file_leaves_a_temporary_the_next_atlas_run_removes(tmp_path):
    write_factory_module(tmp_path, FACTORY)
    atlas = tmp_path / "atlas"
    args = [
        "atlas",
        "--model",
        f"{FACTORY}:factory",
        "--weights",
        "random",
        "--layer",
        "conv3",
        "--units",
        "0-3",
        "--size",
        "32x32",
        "--steps",
        "2",
        "-q",
        "--out",
        str(atlas),
    ]
    assert _run(args, tmp_path).returncode == 0
    # a process killed (SIGKILL) in the middle of writing a unit: its temporary stays behind
    kill = (
        "import os, sys; from cnnvis.io.files import temporary_beside; t = temporary_beside(sys.argv[1]); "
        "open(t, 'wb').write(b'half a png'); os.kill(os.getpid(), 9)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", kill, str(atlas / "conv3" / "unit_0001.png")], env=subprocess_env(tmp_path)
    )
    assert proc.returncode == -9
    stray = [n for n in os.listdir(atlas / "conv3") if is_temporary(n)]
    assert len(stray) == 1 and stray[0].startswith(".unit_0001.")
    proc = _run(args, tmp_path)  # a rerun: everything is there, nothing to render
    assert proc.returncode == 0 and "skipping 4 units" in proc.stderr, proc.stderr
    _no_temporaries(atlas / "conv3")


def test_a_video_into_a_full_disk_is_one_line_and_the_rerun_finishes(tmp_path, setup, small_disk):
    from conftest import write_clip

    clip = tmp_path / "clip.mp4"
    write_clip(clip, np.stack([smooth_rgb(48, 48, s) for s in range(4)]))
    out = small_disk / "out.mp4"
    args = _dream_args(clip, out, "--steps", 2)
    filler = _fill(small_disk)
    _one_line(_run(args, tmp_path), str(small_disk), "(ENOSPC)")
    _no_temporaries(small_disk)
    os.remove(filler)
    assert _run(args, tmp_path).returncode == 0 and out.exists()
    # the parts of the failed run are gone
    assert sorted(os.listdir(small_disk)) == [
        "out.mp4",
        "out.mp4.manifest.json",
    ]  # the parts of the failed run are gone


def test_joining_video_segments_on_a_full_disk_is_one_output_error_and_leaves_no_listing(tmp_path, small_disk):
    """The concat list ffmpeg reads is a write like any other: a full disk names it (a video whose
    frames filled the disk used to end in a traceback while keeping the frames done)."""
    from cnnvis.errors import OutputError
    from cnnvis.io.video_out import join_mp4

    segments = [str(small_disk / f"seg{i}.mp4") for i in range(200)]  # a listing longer than any slack
    filler = _fill(small_disk)
    with pytest.raises(OutputError, match=r"concat.*\(ENOSPC\)"):
        join_mp4(segments, str(small_disk / "out.mp4"))
    os.remove(filler)
    assert os.listdir(small_disk) == []
