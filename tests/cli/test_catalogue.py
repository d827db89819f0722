"""The catalogue on the command line: directions, caricatures, diversity, interpolation, channel modes."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
from conftest import assert_one_line_error, invoke

FAST = ["--steps", "2", "--size", "32x32", "-q"]


def _model(factory):
    return ["--model", f"{factory}:factory"]


def test_prefer_direction_from_a_file(tmp_path, factory_module):
    v = tmp_path / "v.npy"
    np.save(v, np.linspace(-1, 1, 16).astype(np.float32))
    res = invoke(["prefer", *_model(factory_module), "-O", f"direction:conv3:{v}", *FAST, "--out", tmp_path / "d.png"])
    assert res.exit_code == 0, res.output
    assert iio.imread(tmp_path / "d.png").shape == (32, 32, 3)


def test_a_direction_of_the_wrong_length_is_one_line(tmp_path, factory_module):
    v = tmp_path / "v.npy"
    np.save(v, np.ones(5, np.float32))
    res = invoke(
        ["prefer", *_model(factory_module), "-O", f"direction-cossim:conv3:{v}", *FAST, "--out", tmp_path / "d.png"]
    )
    assert_one_line_error(res, "5 values", "16 channels")


def test_caricature_needs_and_uses_a_reference(tmp_path, factory_module, make_image):
    assert_one_line_error(
        invoke(["prefer", *_model(factory_module), "-O", "caricature:conv3", *FAST, "--out", tmp_path / "c.png"]),
        "--reference",
    )
    res = invoke(
        [
            "prefer",
            *_model(factory_module),
            "-O",
            "caricature:conv3",
            "--reference",
            make_image(),
            *FAST,
            "--out",
            tmp_path / "c.png",
        ]
    )
    assert res.exit_code == 0, res.output


def test_interpolation_writes_frames_a_sheet_and_a_gif(tmp_path, factory_module):
    res = invoke(
        [
            "prefer",
            *_model(factory_module),
            "--interpolate",
            "conv3:1:7",
            "--batch",
            "4",
            "--alignment",
            "1",
            *FAST,
            "--out",
            tmp_path / "i.png",
        ]
    )
    assert res.exit_code == 0, res.output
    frames = [iio.imread(tmp_path / f"i_t{k}.png") for k in range(4)]
    assert not np.array_equal(frames[0], frames[3])
    gif = iio.imread(tmp_path / "i.gif", index=None)
    assert gif.shape[0] == 6  # there and back: 0 1 2 3 2 1
    assert (tmp_path / "i_sheet.png").exists()


def test_interpolation_frames_share_low_resolution_terms_unless_told_not_to(tmp_path, factory_module):
    """lucid's SharedImage: on by default with --interpolate (the config records it), off with
    --no-shared; the shared frames are closer to each other than independent ones."""
    from cnnvis.io.manifest import read_manifest

    def frames(*flags):
        out = tmp_path / f"s{len(flags)}.png"
        res = invoke(
            [
                "prefer",
                *_model(factory_module),
                "--interpolate",
                "conv3:1:7",
                "--batch",
                "3",
                *FAST,
                *flags,
                "--out",
                out,
            ]
        )
        assert res.exit_code == 0, res.output
        return read_manifest(str(tmp_path / f"s{len(flags)}_t0.png"))["config"], [
            iio.imread(tmp_path / f"s{len(flags)}_t{k}.png").astype(float) for k in range(3)
        ]

    cfg_on, on = frames()
    cfg_off, off = frames("--no-shared")
    assert cfg_on["shared"] is True and cfg_off["shared"] is False
    assert not np.array_equal(on[0], off[0])
    assert_one_line_error(
        invoke(
            [
                "prefer",
                *_model(factory_module),
                "--layer",
                "conv3",
                "--channel",
                "2",
                "--param",
                "pixel",
                "--shared",
                *FAST,
                "--out",
                tmp_path / "p.png",
            ]
        ),
        "--shared",
        "--param fft",
    )


def test_diversity_renders_a_batch(tmp_path, factory_module):
    res = invoke(
        [
            "prefer",
            *_model(factory_module),
            "--layer",
            "conv3",
            "--channel",
            "2",
            "--whole-channel",
            "--batch",
            "3",
            "--diversity",
            "10",
            *FAST,
            "--out",
            tmp_path / "v.png",
        ]
    )
    assert res.exit_code == 0, res.output
    a, b = iio.imread(tmp_path / "v_b0.png"), iio.imread(tmp_path / "v_b1.png")
    assert not np.array_equal(a, b)


def test_batch_options_need_a_batch(tmp_path, factory_module):
    assert_one_line_error(
        invoke(
            [
                "prefer",
                *_model(factory_module),
                "--interpolate",
                "conv3:1:7",
                "--batch",
                "1",
                *FAST,
                "--out",
                tmp_path / "i.png",
            ]
        ),
        "--batch 2 or more",
        "got 1",
    )
    assert_one_line_error(
        invoke(
            [
                "prefer",
                *_model(factory_module),
                "--layer",
                "conv3",
                "--channel",
                "2",
                "--diversity",
                "1",
                *FAST,
                "--out",
                tmp_path / "i.png",
            ]
        ),
        "--batch 2 or more",
    )
    assert_one_line_error(
        invoke(
            [
                "prefer",
                *_model(factory_module),
                "--interpolate",
                "conv3:x:7",
                "--batch",
                "3",
                *FAST,
                "--out",
                tmp_path / "i.png",
            ]
        ),
        "conv3:x:7",
    )
    assert_one_line_error(
        invoke(["prefer", *_model(factory_module), *FAST, "--out", tmp_path / "i.png"]), "name what to maximize"
    )


def test_dream_channel_mode_prints_and_dreams_the_chosen_channels(tmp_path, factory_module, make_image):
    img = make_image()
    res = invoke(
        [
            "dream",
            img,
            *_model(factory_module),
            "--layer",
            "conv3",
            "--channel-mode",
            "strongest",
            "--channel-count",
            "3",
            "--octaves",
            "1",
            "--steps",
            "2",
            "-q",
            "--out",
            tmp_path / "m.png",
        ]
    )
    assert res.exit_code == 0, res.output
    line = next(s for s in res.output.splitlines() if s.startswith("strongest 3 channels of conv3: "))
    assert len(line.split(": ")[1].split(",")) == 3
    big = invoke(
        [
            "dream",
            img,
            *_model(factory_module),
            "--layer",
            "conv3",
            "--channel-mode",
            "weakest",
            "--channel-count",
            "17",
            "--out",
            tmp_path / "m.png",
        ]
    )
    assert_one_line_error(big, "--channel-count 17", "16 channels")


def test_dream_lap_scale_runs_and_changes_the_result(tmp_path, factory_module):
    base = [
        "dream",
        "--noise",
        *_model(factory_module),
        "--layer",
        "conv3",
        "--octaves",
        "1",
        "--steps",
        "3",
        "--final-size",
        "48x48",
        "-q",
    ]
    assert invoke([*base, "--out", tmp_path / "a.png"]).exit_code == 0
    assert invoke([*base, "--lap-scale", "3", "--out", tmp_path / "b.png"]).exit_code == 0
    assert not np.array_equal(iio.imread(tmp_path / "a.png"), iio.imread(tmp_path / "b.png"))
