"""The ``cnnvis`` command line: in-process through CliRunner, plus real subprocesses (a run, Ctrl-C)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import assert_one_line_error as _assert_one_line_error
from conftest import cnnvis_exe as _exe
from conftest import interrupt_after_first_step, popen_sigint_default, smooth_rgb, subprocess_env
from conftest import invoke as _invoke


@pytest.fixture
def img96(make_image):
    return make_image("in96.png", h=96, w=96)


# ---------------------------------------------------------------------------- successful runs
def test_dream_with_factory_model(tmp_path, factory_module, make_image):
    # 96 px: even 4 octaves (see test_dream_octaves_1_means_one_size) stay above the minimum size.
    src = make_image("in.png", h=96, w=112)
    out = tmp_path / "out.png"
    res = _invoke(
        [
            "dream",
            src,
            "--model",
            f"{factory_module}:factory",
            "--layer",
            "conv3",
            "--tile",
            32,
            "--steps",
            2,
            "--octaves",
            1,
            "-q",
            "--out",
            out,
        ]
    )
    assert res.exit_code == 0, (res.output, res.exception)
    got = iio.imread(out)
    assert got.shape == (96, 112, 3) and got.dtype == np.uint8
    assert np.abs(got.astype(int) - smooth_rgb(96, 112)).mean() > 1.0  # the dream changed something
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".png") == ["in.png", "out.png"]


def test_dream_save_every_video_and_objectives(tmp_path, factory_module, make_image):
    src = make_image("in.png", h=40, w=48)
    out = tmp_path / "o.png"
    res = _invoke(
        [
            "dream",
            src,
            "--model",
            f"{factory_module}:factory",
            "-O",
            "channel:conv3:2@0.5",
            "-O",
            "dream:conv2",
            "--tile",
            32,
            "--steps",
            2,
            "--final-size",
            "40x48",
            "--num-sizes",
            1,
            "--save-every",
            1,
            "--video",
            tmp_path / "v.gif",
            "--out",
            out,
        ]
    )
    assert res.exit_code == 0, (res.output, res.exception)
    assert iio.imread(out).shape == (40, 48, 3)
    assert (tmp_path / "o_1_1.png").exists() and (tmp_path / "o_1_2.png").exists()
    frames = iio.imread(tmp_path / "v.gif", index=None)
    assert frames.shape[0] == 2
    assert "wrote" in res.stdout
    # a --save-every image carries its own manifest, and replays to itself (its twin of the re-run)
    from cnnvis.io.manifest import read_manifest

    step1 = read_manifest(str(tmp_path / "o_1_1.png"))
    assert step1["output_label"] == "1_1" and step1["status"] == "step 1 of 2"
    again = _invoke(["replay", tmp_path / "o_1_1.png", "--check", "--trust-model", "--out", tmp_path / "r.png"])
    assert again.exit_code == 0 and "matches" in again.stdout, (again.output, again.exception)


def test_dream_noise_and_guide(tmp_path, factory_module, make_image):
    guide = make_image("guide.png", h=50, w=50, seed=7)
    out = tmp_path / "n.png"
    res = _invoke(
        [
            "dream",
            "--noise",
            "--model",
            f"{factory_module}:factory",
            "--layer",
            "conv3",
            "--guide",
            guide,
            "--tile",
            32,
            "--steps",
            2,
            "--final-size",
            "48x64",
            "--num-sizes",
            1,
            "-q",
            "--out",
            out,
        ]
    )
    assert res.exit_code == 0, (res.output, res.exception)
    img = iio.imread(out)
    assert img.shape == (48, 64, 3) and img.std() > 0  # noise init is not flat


def test_version():
    res = _invoke(["--version"])
    assert res.exit_code == 0 and "0.1.0" in res.output


def test_dream_octaves_1_means_one_size(tmp_path, factory_module, make_image):
    src = make_image("in64.png", h=64, w=64)
    out = tmp_path / "out.png"
    res = _invoke(
        [
            "dream",
            src,
            "--model",
            f"{factory_module}:factory",
            "--layer",
            "conv3",
            "--tile",
            32,
            "--steps",
            1,
            "--octaves",
            1,
            "--out",
            out,
        ]
    )
    assert res.exit_code == 0, res.output
    assert "size 1/1" in res.stderr


def test_dream_help_lists_options():
    res = _invoke(["dream", "--help"])
    assert res.exit_code == 0
    for opt in ("--octaves", "--tile", "--layer", "--final-size", "--tv-weight", "--out"):
        assert opt in res.output


def test_layers_lists_shapes():
    res = _invoke(["layers", "efficientnet-lite0"])
    assert res.exit_code == 0, res.output
    rows = [ln.split() for ln in res.output.splitlines() if ln.startswith("blocks.4.2 ")]
    assert rows == [["blocks.4.2", "InvertedResidual", "1x112x14x14", "nchw", "112x14x14"]]
    res = _invoke(["layers", "efficientnet-lite0", "--size", 64])
    assert any(ln.split()[:1] == ["blocks.4.2"] and ln.split()[2] == "1x112x4x4" for ln in res.output.splitlines())
    assert any(
        ln.split()[:1] == ["classifier"] and ln.split()[3:] == ["vector", "1000"] for ln in res.output.splitlines()
    )


def test_layers_errors():
    _assert_one_line_error(_invoke(["layers", "efficientnet-lite0", "--size", 8]), "--size 8")
    _assert_one_line_error(_invoke(["layers", "vgg61"]), "'vgg61'", "did you mean")


def test_models_lists_names():
    res = _invoke(["models"])
    assert res.exit_code == 0
    assert "vgg16" in res.output and "efficientnet-lite0" in res.output and "timm:NAME" in res.output


# ---------------------------------------------------------------------------- bad input
def test_error_missing_image(tmp_path):
    missing = tmp_path / "nope.png"
    _assert_one_line_error(_invoke(["dream", missing, "--out", tmp_path / "o.png"]), str(missing))


def test_error_corrupt_image(tmp_path):
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes())
    _assert_one_line_error(_invoke(["dream", bad, "--out", tmp_path / "o.png"]), "corrupt.png")


def test_error_unknown_model(tmp_path, img96):
    _assert_one_line_error(
        _invoke(["dream", img96, "--model", "vgg61", "--out", tmp_path / "o.png"]), "'vgg61'", "did you mean"
    )


def test_error_unknown_layer(tmp_path, img96):
    _assert_one_line_error(
        _invoke(["dream", img96, "--layer", "blocks.4.22", "--out", tmp_path / "o.png"]),
        "'blocks.4.22'",
        "did you mean 'blocks.4.2'",
    )


def test_error_no_default_layer(tmp_path, img96, factory_module):
    _assert_one_line_error(
        _invoke(["dream", img96, "--model", f"{factory_module}:factory", "--out", tmp_path / "o.png"]), "--layer"
    )


def test_error_channel_out_of_range_quiet(tmp_path, img96):
    _assert_one_line_error(
        _invoke(["dream", img96, "--layer", "blocks.4.2", "--channel", 500, "-q", "--out", tmp_path / "o.png"]),
        "channel 500",
        "0..111",
    )


def test_error_channel_out_of_range_with_progress_bar(tmp_path, img96):
    # Without -q the error must still be the only thing on stderr (no half-drawn progress bar).
    _assert_one_line_error(
        _invoke(["dream", img96, "--layer", "blocks.4.2", "--channel", 500, "--out", tmp_path / "o.png"]), "channel 500"
    )
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize(
    "args,needles",
    [
        (["--final-size", "4x4"], ["4x4", "minimum"]),
        (["--final-size", "12by7"], ["'12by7'"]),
        (["--lr", "0"], ["--lr", "0"]),
        (["--lr", "nan"], ["--lr", "nan"]),
        (["--octaves", "0"], ["--octaves"]),
        (["--tile", "8", "--octaves", "1"], ["--tile 8"]),
        (["--channel", "3", "--x", "1"], ["--x and --y"]),
        (["-O", "bogus"], ["'bogus'"]),
        (["--device", "nonsense"], ["'nonsense'"]),
    ],
)
def test_error_bad_settings(tmp_path, img96, args, needles):
    _assert_one_line_error(_invoke(["dream", img96, *args, "--out", tmp_path / "o.png"]), *needles)


def test_error_unwritable_output_dir(img96):
    _assert_one_line_error(_invoke(["dream", img96, "--out", "/nonexistent_dir/x.png"]), "/nonexistent_dir")


def test_error_bad_output_extension(tmp_path, img96):
    _assert_one_line_error(_invoke(["dream", img96, "--out", tmp_path / "o.txt"]), "o.txt")


def test_error_image_and_noise(tmp_path, img96):
    _assert_one_line_error(_invoke(["dream", img96, "--noise", "--out", tmp_path / "o.png"]), "--noise")


# ---------------------------------------------------------------------------- real processes
def _env():
    return subprocess_env()


def test_subprocess_dream_default_model(tmp_path):
    src = tmp_path / "small.png"
    iio.imwrite(src, smooth_rgb(96, 96, seed=3))
    out = tmp_path / "x.png"
    proc = subprocess.run(
        [_exe(), "dream", str(src), "--steps", "2", "--octaves", "1", "-q", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert iio.imread(out).shape == (96, 96, 3)


def test_subprocess_ctrl_c_writes_interrupted_image(tmp_path):
    src = tmp_path / "small.png"
    iio.imwrite(src, smooth_rgb(64, 64, seed=4))
    out = tmp_path / "o.png"
    err_path = tmp_path / "stderr.txt"
    # --final-size pins a single 64x64 size (see test_dream_octaves_1_means_one_size for --octaves 1 alone).
    cmd = [
        _exe(),
        "dream",
        str(src),
        "--model",
        "efficientnet-lite0",
        "--steps",
        "1000",
        "--octaves",
        "1",
        "--final-size",
        "64x64",
        "--out",
        str(out),
    ]
    code, stdout, stderr = interrupt_after_first_step(cmd, 1000, err_path, _env(), tmp_path)
    assert code == 130, stderr
    assert "Traceback" not in stderr
    interrupted = tmp_path / "o.interrupted.png"
    assert interrupted.exists()
    assert not out.exists()
    img = iio.imread(interrupted)
    assert img.shape == (64, 64, 3)
    assert b"interrupted" in stdout
    from cnnvis.io.manifest import read_manifest

    assert read_manifest(str(interrupted))["status"].startswith("interrupted after step ")


def test_subprocess_ctrl_c_before_first_step_exits_130_without_traceback(tmp_path):
    out = tmp_path / "early.png"
    proc = popen_sigint_default(
        [_exe(), "dream", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=tmp_path
    )
    time.sleep(0.7)  # inside main(), still importing torch / loading the model
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert b"Traceback" not in stderr and b"nothing written" in stderr
    assert not out.exists()


def test_import_and_help_do_not_load_torch():
    code = (
        "import sys, cnnvis, cnnvis.cli; assert 'torch' not in sys.modules, 'torch imported'; print(cnnvis.__version__)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    help_proc = subprocess.run([_exe(), "--help"], capture_output=True, text=True, env=_env(), timeout=60)
    assert help_proc.returncode == 0 and "dream" in help_proc.stdout


def test_dream_video_frame_by_frame(tmp_path, factory_module):
    frames = np.stack([smooth_rgb(40, 40, seed=s) for s in range(3)])
    src = tmp_path / "clip.gif"
    iio.imwrite(src, frames, extension=".gif", duration=100, loop=0)
    out = tmp_path / "dream.gif"
    res = _invoke(
        [
            "dream",
            src,
            "--model",
            f"{factory_module}:factory",
            "--layer",
            "conv3",
            "--tile",
            32,
            "--steps",
            2,
            "--octaves",
            1,
            "-q",
            "--out",
            out,
        ]
    )
    assert res.exit_code == 0, res.output
    got = iio.imread(out, index=None)
    assert got.shape[0] == 3 and not np.array_equal(got[0], frames[0])
    _assert_one_line_error(
        _invoke(
            [
                "dream",
                src,
                "--model",
                f"{factory_module}:factory",
                "--layer",
                "conv3",
                "-q",
                "--out",
                tmp_path / "x.png",
            ]
        ),
        "must be a video",
    )


def test_jpeg_quality(tmp_path, factory_module, make_image):
    src = make_image("q.png", h=64, w=64)
    sizes = {}
    for q in (40, 95):
        out = tmp_path / f"q{q}.jpg"
        res = _invoke(
            [
                "dream",
                src,
                "--model",
                f"{factory_module}:factory",
                "--layer",
                "conv3",
                "--tile",
                32,
                "--steps",
                1,
                "--octaves",
                1,
                "--jpeg-quality",
                q,
                "-q",
                "--out",
                out,
            ]
        )
        assert res.exit_code == 0, res.output
        sizes[q] = out.stat().st_size
    assert sizes[40] < 0.8 * sizes[95]
    _assert_one_line_error(_invoke(["dream", src, "--jpeg-quality", 0, "--out", tmp_path / "x.jpg"]), "--jpeg-quality")


def test_a_mistyped_flag_suggests_only_close_names():
    line = _assert_one_line_error(_invoke(["dream", "--step", 3]), "--steps")
    assert "--tile" not in line
