"""Shared fixtures: a tiny seeded CNN, the embedded EfficientNet-Lite0, image files, factory modules."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections import OrderedDict

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from torch import nn

import cnnvis
from cnnvis.models.registry import LoadedModel, disable_inplace

# One intra-op thread: the tensors here are tiny, and OpenMP spinning on 2 shared cores costs
# ~100x on small convolutions when anything else runs on the machine.
torch.set_num_threads(1)


def pytest_configure(config):
    # torch.jit.* deprecation notices and imageio's plugin probing are noise for this suite.
    config.addinivalue_line("filterwarnings", "ignore::FutureWarning:torch.jit")
    config.addinivalue_line("filterwarnings", "ignore:The legacy `DICOM` plugin:DeprecationWarning")


def build_tiny_cnn(inplace: bool = True) -> nn.Sequential:
    """The tiny seeded CNN of the suite: 3 -> 8 -> 16 (stride 2) -> 16 channels."""
    torch.manual_seed(0)
    net = nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(3, 8, 3, padding=1)),
                ("relu1", nn.ReLU(inplace=inplace)),
                ("conv2", nn.Conv2d(8, 16, 3, stride=2, padding=1)),
                ("relu2", nn.ReLU()),
                ("conv3", nn.Conv2d(16, 16, 3, padding=1)),
            ]
        )
    )
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


@pytest.fixture
def tiny_model() -> LoadedModel:
    net = build_tiny_cnn(inplace=True)
    disable_inplace(net)
    return LoadedModel(name="tiny", module=net, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=32, min_size=8)


@pytest.fixture(scope="session")
def lite0() -> LoadedModel:
    return cnnvis.load_model("efficientnet-lite0")


def _test_devices() -> list[str]:
    """cpu always; cuda and mps where this machine has them (kornia's test-suite style)."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


@pytest.fixture(params=_test_devices(), ids=str)
def device(request) -> torch.device:
    """Each available device in turn (ids cpu / cuda / mps): a test that builds its tensors on
    ``device`` checks the GPU path too on a machine that has one."""
    return torch.device(request.param)


def smooth_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A deterministic uint8 (h, w, 3) test picture: smooth gradients plus mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / max(w - 1, 1), yy / max(h - 1, 1), 0.5 + 0.4 * np.sin((xx + yy) / 6.0)], axis=2)
    img = np.clip(0.1 + 0.8 * base + rng.normal(0, 0.05, (h, w, 3)), 0, 1)
    return (img * 255).round().astype(np.uint8)


@pytest.fixture
def make_image(tmp_path):
    """Write a small image file through imageio and return its path (str)."""

    def _make(name: str = "img.png", h: int = 48, w: int = 64, seed: int = 0, array: np.ndarray | None = None) -> str:
        path = tmp_path / name
        arr = smooth_rgb(h, w, seed) if array is None else array
        iio.imwrite(path, arr)
        return str(path)

    return _make


FACTORY_SOURCE = textwrap.dedent("""
    from collections import OrderedDict

    import torch
    from torch import nn


    def factory():
        torch.manual_seed(0)
        return nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 8, 3, padding=1)),
            ("relu1", nn.ReLU(inplace=True)),
            ("conv2", nn.Conv2d(8, 16, 3, stride=2, padding=1)),
            ("relu2", nn.ReLU()),
            ("conv3", nn.Conv2d(16, 16, 3, padding=1)),
        ]))


    not_a_factory = 3
""")


def write_factory_module(directory, name: str | None = None) -> str:
    """Write a module defining ``factory()`` (the tiny CNN) into ``directory``; return its module name."""
    name = name or f"cnnvis_test_factory_{uuid.uuid4().hex[:10]}"
    (directory / f"{name}.py").write_text(FACTORY_SOURCE)
    return name


@pytest.fixture
def factory_module(tmp_path, monkeypatch):
    """A tiny-CNN factory module importable for this test; returns the module name."""
    d = tmp_path / "factory_pkg"
    d.mkdir()
    name = write_factory_module(d)
    monkeypatch.syspath_prepend(str(d))
    yield name
    sys.modules.pop(name, None)


@pytest.fixture
def tiny_cli(factory_module) -> list[str]:
    """The CLI flags of the tiny-CNN factory model: ``--model pkg:factory --weights random``."""
    return ["--model", f"{factory_module}:factory", "--weights", "random"]


# ---------------------------------------------------------------- Caffe files written by tests
def caffe_relu(name: str, blob: str) -> str:
    return (
        f'layer {{ name: "{name}" type: "ReLU" bottom: "{blob}" top: "{blob}" relu_param {{ negative_slope: 0.3 }} }}\n'
    )


def caffe_conv(name: str, kind: str, bottom: str, top: str, out: int, k: int, s: int, p: int) -> str:
    return (
        f'layer {{ name: "{name}" type: "{kind}" bottom: "{bottom}" top: "{top}"\n'
        f"  param {{ lr_mult: 1 decay_mult: 0 }} param {{ lr_mult: 0 decay_mult: 0 }}\n"
        f"  convolution_param {{ num_output: {out} pad: {p} kernel_size: {k} stride: {s} engine: CUDNN }} }}\n"
    )


def norm1_generator_prototxt() -> str:
    """The release norm1 generator: Convolution (not Deconvolution) 3x3 layers, 255 * tanh output."""
    text = 'input: "feat"\ninput_shape { dim: 64 dim: 96 dim: 27 dim: 27 }\n'
    text += caffe_conv("Rconv6", "Convolution", "feat", "Rconv6", 128, 3, 2, 2) + caffe_relu("Rrelu6", "Rconv6")
    text += caffe_conv("Rconv7", "Convolution", "Rconv6", "Rconv7", 128, 3, 1, 1) + caffe_relu("Rrelu7", "Rconv7")
    text += caffe_conv("Rconv8", "Convolution", "Rconv7", "Rconv8", 128, 3, 1, 1) + caffe_relu("Rrelu8", "Rconv8")
    bottom = "Rconv8"
    for up, conv, out in [("deconv4", "conv4_1", 128), ("deconv3", "conv3_1", 64), ("deconv2", "conv2_1", 32)]:
        text += caffe_conv(up, "Deconvolution", bottom, up, out, 4, 2, 1) + caffe_relu(f"relu_{up}", up)
        text += caffe_conv(conv, "Convolution", up, conv, out, 3, 1, 1) + caffe_relu(f"relu_{conv}", conv)
        bottom = conv
    text += caffe_conv("deconv1", "Deconvolution", bottom, "deconv1", 16, 4, 2, 1)
    text += caffe_conv("conv1_1", "Convolution", "deconv1", "conv1_1", 3, 3, 1, 1)
    text += 'layer { name: "tanh" type: "TanH" bottom: "conv1_1" top: "conv1_1_tanh" }\n'
    return (
        text + 'layer { name: "conv1_1_tanh" type: "Eltwise" bottom: "conv1_1_tanh" top: "generated" '
        "eltwise_param { coeff: 255 } }\n"
    )


def write_caffemodel_of(path, net) -> str:
    """Write ``net``'s weights as Caffe would: per layer, blobs in Caffe layout (deconv: in, out, kh, kw)."""
    from cnnvis.models.caffe import proto

    msg = proto.NetParameter(name="generator")
    for name, module in net.named_children():
        params = [p for p in (getattr(module, "weight", None), getattr(module, "bias", None)) if p is not None]
        if params:
            layer = msg.layer.add(name=net.caffe_names[name], type=net.layer_types[name])
            for p in params:
                blob = layer.blobs.add()
                blob.shape.dim.extend(p.shape)
                blob.data.extend(p.detach().numpy().ravel().tolist())
    with open(path, "wb") as f:
        f.write(msg.SerializeToString())
    return str(path)


# ---------------------------------------------------------------- the command line, in process and as a subprocess
def invoke(args):
    """Run ``cnnvis ARGS`` in process (click's CliRunner); arguments may be paths or numbers."""
    from click.testing import CliRunner

    from cnnvis.cli.commands import main

    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(res, *needles) -> str:
    """Exit code 2, one ``Error: ...`` line on stderr containing every needle, no traceback."""
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output
    lines = res.stderr.splitlines()
    assert len(lines) == 1, repr(res.stderr)
    assert lines[0].startswith("Error: "), repr(res.stderr)
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def cnnvis_exe() -> str:
    """The installed ``cnnvis`` console script."""
    import shutil
    from pathlib import Path

    found = shutil.which("cnnvis")
    if found:
        return found
    cand = Path(sys.executable).parent / "cnnvis"
    assert cand.exists(), "the cnnvis console script is not installed"
    return str(cand)


def subprocess_env(*paths) -> dict:
    """The environment for a ``cnnvis`` subprocess: this checkout (and ``paths``) importable, one OpenMP thread."""
    import os
    from pathlib import Path

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [*map(str, paths), str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH")])
    )
    env.pop("PYTHONWARNINGS", None)
    # Same reason as torch.set_num_threads(1) above: OpenMP spinning on 2 shared cores.
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@pytest.fixture
def sigint_at_default():
    """SIGINT at Python's default handler for the test, as in a command started from a terminal: a pytest started
    in the background (``nohup``, ``&``) inherits SIGINT ignored, which cnnvis rightly leaves ignored."""
    import signal

    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def popen_sigint_default(cmd, **kwargs):
    """``subprocess.Popen`` for a child that may get a real Ctrl-C: it starts with SIGINT at its
    default disposition. A pytest started in the background by a script inherits SIGINT ignored
    (SIG_IGN), its children would too, and cnnvis rightly honours an ignored SIGINT. exec resets a
    caught signal to SIG_DFL but keeps an ignored one ignored, so SIGINT is caught here while the
    child starts (no ``preexec_fn``: that is unsafe with threads, and torch's are running)."""
    import signal
    import subprocess
    import threading

    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        return subprocess.Popen(cmd, **kwargs)
    if threading.current_thread() is not threading.main_thread():  # signal.signal works only there
        return subprocess.Popen(cmd, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kwargs)  # noqa: PLW1509
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(cmd, **kwargs)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def interrupt_after_first_step(cmd, total: int, err_path, env, cwd, wait: float = 90):
    """Start ``cmd``, wait until its progress bar shows a finished step of ``total``, send Ctrl-C
    (SIGINT); return (exit code, stdout bytes, stderr text)."""
    import re
    import signal
    import subprocess
    import time

    done = re.compile(rf"\b[1-9][0-9]*/{total}\b")
    with open(err_path, "wb") as err:
        proc = popen_sigint_default(cmd, stdout=subprocess.PIPE, stderr=err, env=env, cwd=cwd)
        try:
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and proc.poll() is None:
                if done.search(err_path.read_text(errors="replace")):
                    break
                time.sleep(0.1)
            assert proc.poll() is None, f"exited early: {err_path.read_text(errors='replace')}"
            assert done.search(err_path.read_text(errors="replace")), f"no step within {wait} s"
            proc.send_signal(signal.SIGINT)
            stdout, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return proc.returncode, stdout, err_path.read_text(errors="replace")


# ---------------------------------------------------------------- video clips written by tests
def write_clip(path, frames, fps: float = 10.0, audio: bool = False, faststart: bool = False) -> str:
    """Write uint8 (T, H, W, 3) ``frames`` as an H.264 .mp4 (imageio-ffmpeg, lossy) or a .gif;
    ``audio`` adds a sine tone track (AAC) as long as the clip, ``faststart`` puts the MP4 index
    first (so a truncated copy still plays up to where it was cut)."""
    import subprocess
    from pathlib import Path

    import imageio_ffmpeg

    path = Path(path)
    frames = np.asarray(frames, np.uint8)
    if path.suffix == ".gif":
        iio.imwrite(path, frames, extension=".gif", duration=1000 / fps, loop=0)
        return str(path)
    kw = {}
    if audio:
        tone = path.with_suffix(".tone.m4a")
        subprocess.run(
            [
                imageio_ffmpeg.get_ffmpeg_exe(),
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=22050",
                "-t",
                str(len(frames) / fps),
                "-c:a",
                "aac",
                str(tone),
            ],
            check=True,
            capture_output=True,
        )
        kw = {"audio_path": str(tone), "audio_codec": "aac"}
    h, w = frames.shape[1:3]
    gen = imageio_ffmpeg.write_frames(
        str(path),
        (w, h),
        fps=fps,
        macro_block_size=2,
        ffmpeg_log_level="error",
        output_params=["-movflags", "+faststart"] if faststart else None,
        **kw,
    )
    gen.send(None)
    for f in frames:
        gen.send(np.ascontiguousarray(f))
    gen.close()
    return str(path)


def pan_frames(n: int = 6, h: int = 48, w: int = 64, v: int = 3, seed: int = 0) -> np.ndarray:
    """uint8 (n, h, w, 3): a camera pan over a textured scene, ``v`` pixels a frame to the left
    (frame t = frame t-1 shifted: frame_t[:, x] = frame_{t-1}[:, x + v])."""
    import cv2

    rng = np.random.default_rng(seed)
    scene = cv2.GaussianBlur(rng.random((h, w + v * n, 3)).astype(np.float32), (0, 0), 2.5)
    scene = ((scene - scene.min()) / (scene.max() - scene.min()) * 255).round().astype(np.uint8)
    return np.stack([scene[:, v * t : v * t + w] for t in range(n)])


def assert_resumes_bit_for_bit(ctx, size, param, kind, seed: int):
    """Step ``param`` once toward a seeded target, restore it from its state dict (as a ``kind``),
    then step both again: the two stay bit-identical (a checkpoint goes on exactly)."""
    from cnnvis.params import restore

    target = torch.rand(*param.canvas().shape, generator=torch.Generator().manual_seed(seed))

    def step(q):
        q.apply_gradient(2 * (q.draw() - target))
        q.optimizer.step()
        q.clear_gradient()

    step(param)
    back = restore(ctx, size, param.state_dict())
    assert isinstance(back, kind) and torch.equal(back.canvas(), param.canvas())
    step(param)
    step(back)
    assert torch.equal(back.canvas(), param.canvas())
