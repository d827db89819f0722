"""The measures of cnnvis score: spectral slope, high-frequency energy, transferability."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import assert_one_line_error, invoke

from cnnvis.recipes.quality import class_scores, clipped_fraction, high_frequency_energy, spectral_slope


def _noise(power: float, side: int = 256, seed: int = 0) -> np.ndarray:
    """Grey noise whose amplitude spectrum falls as 1 / f**power, in [0, 1]."""
    rng = np.random.default_rng(seed)
    fy, fx = np.meshgrid(np.fft.fftfreq(side), np.fft.fftfreq(side), indexing="ij")
    f = np.sqrt(fy**2 + fx**2)
    f[0, 0] = 1
    spec = f**-power * np.exp(2j * np.pi * rng.random((side, side)))
    y = np.real(np.fft.ifft2(spec))
    y = (y - y.min()) / (y.max() - y.min())
    return np.repeat(y[..., None], 3, axis=2)


@pytest.mark.parametrize("power", [0.0, 1.0, 2.0])
def test_slope_recovers_the_falloff(power):
    assert spectral_slope(_noise(power)) == pytest.approx(-power, abs=0.12)


def test_high_frequency_energy_of_white_and_pink_noise():
    white, pink = high_frequency_energy(_noise(0.0)), high_frequency_energy(_noise(1.0))
    # white: the spectrum's area beyond radius 1/4 (about 0.8); 1/f: its power per ring falls as 1/f, so
    # the share above 1/4 is log(0.7 / 0.25) / log(0.7 / (1 / 256)), about 0.2
    assert 0.7 < white < 0.9 and 0.15 < pink < 0.3


def test_clipped_fraction_counts_the_values_at_the_ends_of_the_range():
    grey = np.full((8, 8, 3), 0.5)
    assert clipped_fraction(grey) == 0
    blown = grey.copy()
    blown[:2] = 1.0  # a quarter of the rows white
    blown[2:4, :, 0] = 0.001  # and a twelfth of the values within half a step of black
    assert clipped_fraction(blown) == pytest.approx(0.25 + 0.25 / 3)
    assert clipped_fraction(np.clip(grey * 3, 0, 1)) == 1  # a gain that saturates everything


def test_the_embedded_model_sees_a_cat_in_chelsea(lite0):
    import skimage.data

    cat = skimage.data.chelsea().astype(np.float32) / 255
    tabby, egyptian = class_scores(lite0, [cat], 281)[0], class_scores(lite0, [cat], 285)[0]
    assert min(tabby.rank, egyptian.rank) == 0 and tabby.hit5 and egyptian.hit5
    assert class_scores(lite0, [_noise(0.0)], 285)[0].rank > 5


def test_cli_scores_and_writes_json(tmp_path):
    path = tmp_path / "n.png"
    iio.imwrite(path, (_noise(1.0, 128) * 255).astype(np.uint8))
    res = invoke(["score", path, "--class", 285, "--json", tmp_path / "s.json"])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "s.json").read_text())
    row = data["images"][str(path)]
    assert data["class"] == 285 and row["spectral_slope"] == pytest.approx(-1, abs=0.3)
    assert 0 < row["clipped_fraction"] < 0.01 and "clipped" in res.output  # min-max noise: its two extreme pixels
    assert row["efficientnet-lite0"]["rank"] >= 0 and "top-1" in res.output


def test_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "x.txt"
    bad.write_text("no image")
    assert_one_line_error(invoke(["score", bad]), "cannot read image")
    img = tmp_path / "n.png"
    iio.imwrite(img, (_noise(1.0, 64) * 255).astype(np.uint8))
    assert_one_line_error(invoke(["score", img, "--class", 1000]), "--class 1000 is out of range")
