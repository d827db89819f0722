"""Unit lists on the CLI: --channel 0,5,9 / 0-15 render one batch and write one file per channel
plus a contact sheet; a bad list or a too-large size is one line and exit 2."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import assert_one_line_error, invoke

from cnnvis.io.manifest import read_manifest
from cnnvis.recipes.units import parse_units


@pytest.mark.parametrize(
    "text,want",
    [
        ("5", [5]),
        ("0,5,9", [0, 5, 9]),
        ("0-3", [0, 1, 2, 3]),
        ("0-2, 7", [0, 1, 2, 7]),
        (7, [7]),
        ([1, 2], [1, 2]),
        ("3,3,1", [3, 1]),
    ],
)
def test_parse_units(text, want):
    assert parse_units(text) == want


@pytest.mark.parametrize(
    "text,needle",
    [("a", "'a' is not a channel"), ("5-2", "runs backwards"), (",", "names no channel"), ("0-99999", "more than")],
)
def test_parse_units_rejects(text, needle):
    with pytest.raises(ValueError, match=needle):
        parse_units(text)


def test_dream_channel_list_writes_each_channel_and_a_sheet(tmp_path, factory_module):
    out = tmp_path / "d.png"
    res = invoke(
        [
            "dream",
            "--noise",
            "--model",
            f"{factory_module}:factory",
            "--layer",
            "conv3",
            "--channel",
            "0-2",
            "--steps",
            2,
            "--tile",
            32,
            "--octaves",
            1,
            "-q",
            "--out",
            out,
        ]
    )
    assert res.exit_code == 0, res.output
    files = [tmp_path / f"d_c{c}.png" for c in range(3)]
    images = [iio.imread(f) for f in files]
    h, w = images[0].shape[:2]
    assert all(im.shape == (h, w, 3) for im in images)
    assert not np.array_equal(images[0], images[1])  # each image maximized its own channel
    sheet = iio.imread(tmp_path / "d_sheet.png")
    assert sheet.shape[0] > 2 * h and sheet.shape[1] > 2 * w  # a 2x2 grid with gaps
    assert not out.exists()
    m = read_manifest(str(files[1]))
    assert m["params"]["channel"] == [0, 1, 2] and m["output_label"] == "c1"


def test_dream_channel_list_with_a_bad_part_is_one_line(tmp_path, factory_module):
    res = invoke(
        [
            "dream",
            "--noise",
            "--model",
            f"{factory_module}:factory",
            "--layer",
            "conv3",
            "--channel",
            "0-x",
            "--out",
            tmp_path / "d.png",
        ]
    )
    assert_one_line_error(res, "'0-x'")


def test_dream_channel_out_of_range_in_a_list_is_one_line(tmp_path, factory_module):
    res = invoke(
        [
            "dream",
            "--noise",
            "--model",
            f"{factory_module}:factory",
            "--layer",
            "conv3",
            "--channel",
            "1,99",
            "--out",
            tmp_path / "d.png",
        ]
    )
    assert_one_line_error(res, "channel 99", "0..15")


def test_a_canvas_too_large_for_memory_is_one_line_before_any_allocation(tmp_path, factory_module):
    res = invoke(
        [
            "dream",
            "--noise",
            "--model",
            f"{factory_module}:factory",
            "--layer",
            "conv3",
            "--final-size",
            "999999x999999",
            "--out",
            tmp_path / "d.png",
        ]
    )
    line = assert_one_line_error(res, "999999x999999", "GB", "available", "largest size that fits", "--final-size")
    assert "Traceback" not in res.output and line


def test_prefer_channel_list(tmp_path, factory_module):
    out = tmp_path / "p.png"
    res = invoke(
        [
            "prefer",
            "--model",
            f"{factory_module}:factory",
            "--layer",
            "conv3",
            "--channel",
            "1,4",
            "--steps",
            2,
            "-q",
            "--out",
            out,
        ]
    )
    assert res.exit_code == 0, res.output
    a, b = iio.imread(tmp_path / "p_c1.png"), iio.imread(tmp_path / "p_c4.png")
    assert a.shape == b.shape and not np.array_equal(a, b)
    assert (tmp_path / "p_sheet.png").exists()


def test_replay_checks_one_image_of_a_batch(tmp_path, factory_module):
    out = tmp_path / "d.png"
    res = invoke(
        [
            "dream",
            "--noise",
            "--model",
            f"{factory_module}:factory",
            "--layer",
            "conv3",
            "--channel",
            "2,3",
            "--steps",
            2,
            "--tile",
            32,
            "--octaves",
            1,
            "-q",
            "--out",
            out,
        ]
    )
    assert res.exit_code == 0, res.output
    res = invoke(["replay", "--trust-model", tmp_path / "d_c3.png", "--check"])
    assert res.exit_code == 0 and "matches" in res.output, res.output
    assert (tmp_path / "d_c3.replay_c3.png").exists()
