"""``cnnvis train-generator`` and ``--prior dgn`` on the commands, through the real CLI."""

from __future__ import annotations

import os
import subprocess

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from conftest import (
    assert_one_line_error,
    cnnvis_exe,
    interrupt_after_first_step,
    invoke,
    smooth_rgb,
    subprocess_env,
    write_factory_module,
)

from cnnvis.priors.generators.files import load_generator


@pytest.fixture
def photos(tmp_path, make_image):
    d = tmp_path / "photos"
    d.mkdir()
    for i in range(3):
        make_image(f"photos/p{i}.png", h=40, w=48, seed=i)
    return d


def _train(tmp_path, factory_module, photos, *extra, out="gen.pt"):
    return invoke(
        [
            "train-generator",
            "--model",
            f"{factory_module}:factory",
            "--weights",
            "random",
            "--layer",
            "relu2",
            "--images",
            photos,
            "--out",
            tmp_path / out,
            "--size",
            16,
            "--batch-size",
            2,
            "--width",
            8,
            "-q",
            *extra,
        ]
    )


@pytest.fixture
def trained(tmp_path, factory_module, photos):
    res = _train(tmp_path, factory_module, photos, "--steps", 4, "--checkpoint-every", 2)
    assert res.exit_code == 0, (res.output, res.exception)
    return tmp_path / "gen.pt"


def test_train_writes_a_generator_and_a_checkpoint_and_resumes(tmp_path, factory_module, photos, trained):
    gf = load_generator(str(trained))
    assert (gf.model, gf.layer, gf.generator.arch) == (f"{factory_module}:factory", "relu2", "upconv")
    assert gf.info["steps"] == 4 and gf.info["num_images"] == 3 and gf.latent_upper.shape == (16,)
    ck = tmp_path / "gen.pt.ckpt"
    assert ck.exists() and torch.load(ck, weights_only=True)["step"] == 4
    res = _train(tmp_path, factory_module, photos, "--steps", 6)
    assert res.exit_code == 0 and "resuming from" in res.output and "at step 4" in res.output
    assert load_generator(str(trained)).info["steps"] == 6
    res = _train(tmp_path, factory_module, photos, "--steps", 2, "--fresh")
    assert res.exit_code == 0 and "resuming" not in res.output
    assert load_generator(str(trained)).info["steps"] == 2
    # --half halves the file
    assert _train(tmp_path, factory_module, photos, "--steps", 1, "--half", out="half.pt").exit_code == 0
    assert os.path.getsize(tmp_path / "half.pt") < 0.7 * os.path.getsize(trained)


def test_init_fine_tunes_a_generator_file(tmp_path, factory_module, photos, trained):
    """--init starts from a file's weights: with a vanishing learning rate the result is that file."""
    res = _train(tmp_path, factory_module, photos, "--steps", 1, "--lr", 1e-12, "--init", trained, out="tuned.pt")
    assert res.exit_code == 0, (res.output, res.exception)
    start, tuned = load_generator(str(trained)).generator, load_generator(str(tmp_path / "tuned.pt")).generator
    for (name, a), b in zip(start.state_dict().items(), tuned.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name
    fresh = _train(tmp_path, factory_module, photos, "--steps", 1, "--lr", 1e-12, out="fresh.pt")
    assert fresh.exit_code == 0
    first = next(iter(load_generator(str(tmp_path / "fresh.pt")).generator.state_dict().values()))
    assert not torch.allclose(first, next(iter(start.state_dict().values())))
    # another architecture is one line naming both
    assert_one_line_error(
        _train(tmp_path, factory_module, photos, "--width", 4, "--init", trained, out="w4.pt"), "--init", "width"
    )


def test_train_bad_input(tmp_path, factory_module, photos, trained):
    assert_one_line_error(_train(tmp_path, factory_module, photos, out="gen.png"), "gen.png", ".pt")
    assert_one_line_error(
        invoke(
            [
                "train-generator",
                "--layer",
                "relu2",
                "--images",
                tmp_path / "none",
                "--out",
                tmp_path / "g.pt",
                "--model",
                f"{factory_module}:factory",
                "--weights",
                "random",
            ]
        ),
        "image folder not found",
    )
    assert_one_line_error(
        _train(tmp_path, factory_module, photos, "--layer", "nope", out="x.pt"), "unknown layer 'nope'"
    )
    assert_one_line_error(_train(tmp_path, factory_module, photos, "--width", 4), "other settings (width)", "--fresh")


@pytest.mark.parametrize("command", ["prefer", "dream", "invert", "dream-video"])
def test_prior_dgn_on_every_command(tmp_path, factory_module, make_image, trained, command):
    out = tmp_path / f"{command}.png"
    common = [
        "--model",
        f"{factory_module}:factory",
        "--weights",
        "random",
        "--prior",
        "dgn",
        "--generator",
        trained,
        "--steps",
        3,
        "-q",
        "--out",
        out,
    ]
    if command == "prefer":
        args = ["prefer", "--layer", "conv3", "--channel", 2, "--size", "32x32", *common]
    elif command == "dream":
        args = ["dream", make_image("d.png", h=48, w=48), "--layer", "conv3", "--octaves", 2, "--tile", 32, *common]
    elif command == "dream-video":
        src = tmp_path / "clip.gif"
        iio.imwrite(
            src, np.stack([smooth_rgb(32, 32, seed=s) for s in range(2)]), extension=".gif", duration=100, loop=0
        )
        out = tmp_path / "dream.gif"
        common[common.index("--out") + 1] = out
        args = ["dream", src, "--layer", "conv3", "--octaves", 1, "--tile", 32, *common]
    else:
        args = ["invert", make_image("i.png", h=32, w=32), "--layer", "conv3", "--size", "image", *common]
    res = invoke(args)
    assert res.exit_code == 0, (res.output, res.exception)
    assert iio.imread(out, index=0).shape[-1] == 3


def test_prior_bad_input(tmp_path, factory_module, make_image, trained):
    base = [
        "prefer",
        "--layer",
        "conv3",
        "--channel",
        2,
        "--size",
        "32x32",
        "--model",
        f"{factory_module}:factory",
        "--weights",
        "random",
        "--steps",
        1,
        "-q",
        "--out",
        tmp_path / "p.png",
    ]
    short = tmp_path / "bound.txt"
    short.write_text("1 2 3")
    assert_one_line_error(
        invoke([*base, "--generator", trained, "--latent-bound", short]), "has 3 values", "16 channels"
    )
    obj = torch.load(trained, weights_only=True)
    obj["state_dict"]["net.0.weight"] = torch.zeros(3, 3, 1, 1)
    torch.save(obj, tmp_path / "bad.pt")
    assert_one_line_error(
        invoke([*base, "--generator", tmp_path / "bad.pt"]), "does not match the upconv architecture", "net.0.weight"
    )
    assert_one_line_error(invoke([*base, "--generator", tmp_path / "missing.pt"]), "generator file not found")
    assert_one_line_error(invoke([*base, "--prior", "dgn"]), "no shipped generator")
    assert_one_line_error(invoke([*base, "--latent-bound", short]), "add --prior dgn")


def test_subprocess_ctrl_c_saves_checkpoint_and_generator_then_resumes(tmp_path, photos):
    write_factory_module(tmp_path, "tinyfactory")
    env = subprocess_env(tmp_path)
    out = tmp_path / "g.pt"
    cmd = [
        cnnvis_exe(),
        "train-generator",
        "--model",
        "tinyfactory:factory",
        "--weights",
        "random",
        "--layer",
        "relu2",
        "--images",
        str(photos),
        "--out",
        str(out),
        "--size",
        "16",
        "--batch-size",
        "2",
        "--width",
        "8",
        "--steps",
        "100000",
        "--checkpoint-every",
        "0",
    ]
    code, stdout, stderr = interrupt_after_first_step(cmd, 100000, tmp_path / "err.txt", env, tmp_path)
    assert code == 130, stderr
    assert "Traceback" not in stderr and b"rerun the same command to resume" in stdout
    step = torch.load(str(out) + ".ckpt", weights_only=True)["step"]
    assert step >= 1 and load_generator(str(out)).info["steps"] == step
    again = subprocess.run(
        cmd[:-4] + ["--steps", str(step + 2), "-q"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert again.returncode == 0, again.stderr
    assert f"at step {step}" in again.stdout and load_generator(str(out)).info["steps"] == step + 2


# The click parameter names a recorded run replays by: never renamed.
TRAIN_PARAMS = (
    "layer images out steps batch_size size lr scale_min pixel_weight feature_weight adv_weight grid_weight "
    "lattice_weight feature_layers width upsample seed checkpoint_every fresh init half quiet model weights device"
).split()


def test_every_option_has_its_declared_default():
    from cnnvis.cli.commands import main
    from cnnvis.models.options import ModelOptions
    from cnnvis.priors.train_config import UPSAMPLING, TrainCommandOptions, TrainConfig

    declared = {s.name: s for g in (TrainCommandOptions, TrainConfig, ModelOptions) for s in g.settings()}
    params = {p.name: p for p in main.commands["train-generator"].params if p.name != "preset"}
    assert sorted(params) == sorted(TRAIN_PARAMS) == sorted(declared)
    for name, p in params.items():
        s = declared[name]
        assert p.default == s.default, name
        assert p.opts[0] == s.flag and p.multiple == s.multiple, name
        if s.short:
            assert s.short in p.opts, name
    assert tuple(params["upsample"].type.choices) == UPSAMPLING
    assert params["feature_layers"].opts == ["--feature-layer"]


def test_train_missing_flags_are_one_line(tmp_path):
    assert_one_line_error(invoke(["train-generator", "--images", tmp_path, "--out", tmp_path / "g.pt"]), "--layer")
    assert_one_line_error(invoke(["train-generator", "--layer", "relu2", "--images", tmp_path]), "--out", "gen.pt")
    assert_one_line_error(
        invoke(["train-generator", "-l", "relu2", "--images", tmp_path, "-o", "g.pt", "--upsample", "cubic"]),
        "--upsample",
        "cubic",
    )
