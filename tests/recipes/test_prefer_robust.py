"""--robust: the transforms and views a class visualization gets (cnnvis.recipes.prefer.robust_options)."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
from conftest import invoke

from cnnvis.defaults import PREFER_ROBUST_DEFAULTS, PREFER_ROBUST_EDITIONS
from cnnvis.io.manifest import read_manifest, sidecar_path
from cnnvis.recipes.prefer import PreferOptions, robust_options


def _options(lite0, layer, robust="auto", prior=None, **given):
    opts = PreferOptions(layer=layer, channel="3", robust=robust)
    return robust_options(opts, lite0, layer, given, prior)


def test_auto_is_on_for_the_output_layer_on_the_fourier_image_only(lite0):
    assert _options(lite0, "classifier") == PREFER_ROBUST_DEFAULTS
    assert _options(lite0, "classifier", param="fft") == {**PREFER_ROBUST_DEFAULTS, "param": "fft"}
    assert _options(lite0, "blocks.4") == {}  # a channel: prefer's own transforms
    assert _options(lite0, "conv_head") == {}
    assert _options(lite0, "classifier", param="maco") == {"param": "maco"}  # MACO has its own tuned set
    assert _options(lite0, "classifier", prior=object()) == {}  # the generator's path was not tuned with it


def test_on_and_off_and_given_settings_win(lite0):
    assert _options(lite0, "blocks.4", robust="on") == PREFER_ROBUST_DEFAULTS
    assert _options(lite0, "classifier", robust="off") == {}
    given = _options(lite0, "classifier", jitter=1, transform_views=3)
    assert given == {**PREFER_ROBUST_DEFAULTS, "jitter": 1, "transform_views": 3}


def _prefer(tmp_path, name, *extra):
    out = tmp_path / name
    args = ["prefer", "--layer", "classifier", "--channel", 1, "--size", "64x64", "--steps", 3, "-q", "--out", out]
    res = invoke([*args, *extra])
    assert res.exit_code == 0, (res.output, res.exception)
    return str(out)


def test_a_class_visualization_records_robust_and_an_old_manifest_replays_without_it(tmp_path):
    on, off = _prefer(tmp_path, "on.jpg"), _prefer(tmp_path, "off.jpg", "--robust", "off")
    assert read_manifest(on)["params"]["robust"] == "auto"
    assert not np.array_equal(iio.imread(on), iio.imread(off))  # auto did change the class visualization
    with open(sidecar_path(off)) as f:
        m = json.load(f)
    del m["params"]["robust"]  # a JPEG's manifest is its sidecar alone
    with open(sidecar_path(off), "w") as f:
        json.dump(m, f)
    res = invoke(["replay", off, "--check"])
    assert res.exit_code == 0 and "bit for bit" in res.output, res.output
    res = invoke(["replay", on, "--check"])
    assert res.exit_code == 0 and "bit for bit" in res.output, res.output


def _edit_sidecar(path, edit):
    with open(sidecar_path(path)) as f:
        m = json.load(f)
    edit(m)
    with open(sidecar_path(path), "w") as f:
        json.dump(m, f)


def test_two_views_are_the_default_and_a_manifest_without_an_edition_replays_with_one(tmp_path):
    two = _prefer(tmp_path, "two.jpg")
    one = _prefer(tmp_path, "one.jpg", "--robust-edition", 1)
    m = read_manifest(two)
    assert m["config"]["transform_views"] == 2 and m["params"]["transform_views"] is None
    assert (
        m["params"]["robust_edition"] == max(PREFER_ROBUST_EDITIONS)
        and read_manifest(one)["config"]["transform_views"] == 1
    )
    assert not np.array_equal(iio.imread(one), iio.imread(two))
    _edit_sidecar(one, lambda m: m["params"].pop("robust_edition"))  # recorded before editions existed
    for made in (one, two):
        res = invoke(["replay", made, "--check"])
        assert res.exit_code == 0 and "bit for bit" in res.output, res.output


def test_an_unknown_robust_edition_is_one_line(tmp_path):
    made = _prefer(tmp_path, "p.jpg", "--steps", 1)
    for bad in (999, 0, True):
        _edit_sidecar(made, lambda m, bad=bad: m["params"].update(robust_edition=bad))
        res = invoke(["replay", made])
        assert res.exit_code == 2 and "robust_edition" in res.output and "Traceback" not in res.output, res.output
    res = invoke(
        ["prefer", "--layer", "classifier", "--channel", 1, "--robust-edition", 9, "--out", tmp_path / "x.png"]
    )
    assert res.exit_code == 2 and "--robust-edition" in res.output and "Traceback" not in res.output, res.output
