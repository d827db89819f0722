"""Every ``cnnvis ...`` command of the README runs as written: in the README's order, in one folder
holding the files it names (a small photo, a clip, a direction vector...), with its sizes, steps and
counts made tiny, on the embedded model, offline. The commands that need an extra, a download, a
GPU or a file only the user has are skipped, each with its reason."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import invoke

README = Path(__file__).resolve().parents[1] / "README.md"

# substring of a README command -> why this test does not run it
SKIPPED = {
    "ray://": "needs a Ray cluster",
    "--ray": "needs the ray extra and a minute to start it (tests/cli/test_atlas.py runs atlases on Ray)",
    "--device cuda": "needs a GPU",
    "alexnet": "needs Caffe's AlexNet from the Model Zoo (a download)",
    "deploy.prototxt": "needs Caffe's files from the Model Zoo (a download)",
    "fc6": "needs the DGN authors' Caffe generator (a download)",
    "r18.pth": "needs the user's ResNet-18 weights",
    "gen.pt": "needs a generator the user trained (tests/cli/test_train_jobs.py trains one)",
    "--images photos": "trains for minutes (tests/cli/test_train_jobs.py trains a tiny one)",
    "resume ": "needs an interrupted run (tests/cli/test_resume.py and test_video.py interrupt and resume)",
}
# a README line that shows a mistake: it must fail the documented way
EXPECTED_ERRORS = {"cnnvis dream --layer blocks.99"}


def readme_commands() -> list[str]:
    """The ``cnnvis`` command lines of the README's code blocks, comments and prompts removed."""
    commands, in_code = [], False
    for line in README.read_text().splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        text = re.sub(r"^\s*(\$ )?", "", line) if in_code else ""
        if text.startswith("cnnvis "):
            commands.append(re.split(r"\s+#", text)[0].strip())
    return commands


# a value that makes the command small, whatever the README gives
SMALL_VALUES = {
    "--steps": "1",
    "--final-size": "72x72",
    "--octaves": "2",
    "--zoom-frames": "2",
    "--units": "0-1",
    "--save-every": "1",
    "--checkpoint-every": "1",
    "--size": None,  # set per command below
}
# what each command gets appended when the README does not say (tiny sizes, few steps, quiet)
APPENDED = {
    "dream": ["--steps", "1", "--octaves", "2", "-q"],
    "invert": ["--steps", "1", "-q"],
    "prefer": ["--steps", "1", "--size", "48x48", "-q"],
    "atlas": ["--steps", "1", "--size", "32x32", "--units", "0-1", "-q"],
}


def tiny(command: str) -> list[str]:
    """The arguments of a README command with its sizes, steps and counts made small."""
    args = shlex.split(command)[1:]
    verb = args[0]
    for i, a in enumerate(args[:-1]):
        if a in SMALL_VALUES and SMALL_VALUES[a] is not None:
            args[i + 1] = SMALL_VALUES[a]
        if a == "--size" and verb in ("prefer", "atlas"):
            args[i + 1] = "48x48"
    extra = list(APPENDED.get(verb, []))
    if any(a.startswith(("timm:", "clip:")) for a in args) and "--weights" not in args:
        extra += ["--weights", "random"]  # offline: the architecture as written, without its download
    for flag in ("--octaves", "--size"):  # a sizing the README gives is kept (made small above)
        if flag in args and flag in extra:
            del extra[extra.index(flag) : extra.index(flag) + 2]
    if verb == "dream" and "--preset" in args:  # a preset's own sizes (1080p...) made small
        extra += ["--initial-size", "48x80", "--final-size", "96x160"]
    if verb == "dream" and ("--final-size" in args or "--preset" in args) and "--octaves" in extra:
        del extra[extra.index("--octaves") : extra.index("--octaves") + 2]
    if verb == "prefer" and re.search(r"neuron:\S*:\d+:\d+", command):
        # a prefer position is on the layer's map at the image's size: keep the size it was written for
        del extra[extra.index("--size") : extra.index("--size") + 2]
    return args + extra


def _skip_reason(command: str) -> str | None:
    import importlib.util

    if "clip:" in command and importlib.util.find_spec("open_clip") is None:
        return "needs the clip extra (pip install -e '.[clip]'; CI installs it)"
    return next((why for needle, why in SKIPPED.items() if needle in command), None)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The files the README's commands name, small."""
    import torch

    from cnnvis.io.images import bundled_image_path, save_video
    from cnnvis.models.capture import FeatureCapture, resolve_layer
    from cnnvis.models.registry import load_model

    d = tmp_path_factory.mktemp("readme")
    photo = iio.imread(bundled_image_path())[100:164:2, 150:230:2]  # 32x40 of the cat's face
    photo = np.repeat(np.repeat(photo, 2, 0), 2, 1)  # 64x80
    iio.imwrite(d / "photo.jpg", photo)
    iio.imwrite(d / "flowers.jpg", photo[:, ::-1])
    frames = [np.roll(photo, 2 * i, axis=1) for i in range(3)]
    for clip in ("clip.mp4", "phone.mp4"):
        save_video(str(d / clip), frames, fps=8)
    np.save(d / "v.npy", np.random.default_rng(0).standard_normal(112).astype(np.float32))
    (d / "my_look.toml").write_text(
        'description = "a look of my own"\ncommand = "dream"\n\n[options]\nlayer = ["blocks.5.0"]\nsteps = 3\n'
    )
    m = load_model()
    hook = resolve_layer(m.module, "blocks.3", "pre")
    x = torch.from_numpy(np.ascontiguousarray(photo)).permute(2, 0, 1)[None].float() / 255
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear")
    with FeatureCapture(m.module, [hook]) as cap, torch.no_grad():
        feats = cap(m.normalize(x))[hook][0].numpy()
    np.savez(d / "decoded.npz", **{"blocks.3": feats})
    return d


COMMANDS = readme_commands()


def test_the_readme_has_its_commands():
    assert len(COMMANDS) > 50 and any("--x 3 --y 3" in c for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_readme_command_runs_as_written(command, folder, monkeypatch):
    why = _skip_reason(command)
    if why:
        pytest.skip(why)
    monkeypatch.chdir(folder)
    args = tiny(command)
    res = invoke(args)
    if command in EXPECTED_ERRORS:
        assert res.exit_code == 2 and res.output.startswith("Error: ") and "Traceback" not in res.output
        return
    assert res.exit_code == 0, (args, res.output[-800:], res.exception)
    if "--out" in args:  # what it wrote: the file, a folder, or NAME_c5.png ... for a batch
        stem = Path(args[args.index("--out") + 1].rstrip("/")).stem
        assert any(p.name.startswith(stem) for p in folder.iterdir()), (stem, sorted(os.listdir(folder)))
