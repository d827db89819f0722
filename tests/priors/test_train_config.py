"""The settings of train-generator, declared once and without torch (cnnvis.priors.train_config)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cnnvis.defaults import GENERATOR_GRID_WEIGHT, GENERATOR_UPSAMPLE
from cnnvis.errors import InputError
from cnnvis.priors.train_config import UPSAMPLING, TrainCommandOptions, TrainConfig


def test_the_upsamplings_are_the_generators():
    from cnnvis.priors.generators.upconv import UPSAMPLING as GENERATOR_UPSAMPLINGS

    assert UPSAMPLING == GENERATOR_UPSAMPLINGS and GENERATOR_UPSAMPLE in UPSAMPLING


def test_train_config_is_the_trainers():
    from cnnvis.priors import train

    assert train.TrainConfig is TrainConfig
    assert train.config_fields() == [s.name for s in TrainConfig.settings()]


def test_defaults_come_from_the_declarations():
    cfg = TrainConfig()
    assert (cfg.grid_weight, cfg.upsample, cfg.feature_layers) == (GENERATOR_GRID_WEIGHT, GENERATOR_UPSAMPLE, ())
    assert {s.name: s.default for s in TrainConfig.settings()} == {
        s.name: getattr(cfg, s.name) for s in TrainConfig.settings()
    }
    by_name = {s.name: s for s in TrainConfig.settings()}
    assert by_name["upsample"].choices == UPSAMPLING and by_name["feature_layers"].flag == "--feature-layer"
    assert by_name["feature_layers"].multiple


def test_take_pops_only_its_own_fields():
    kw = {"steps": 5, "feature_layers": ("a", "b"), "layer": "conv3", "model": "m"}
    cfg = TrainConfig.take(kw)
    assert (cfg.steps, cfg.feature_layers) == (5, ("a", "b")) and kw == {"layer": "conv3", "model": "m"}
    opts = TrainCommandOptions.take(kw)
    assert opts.layer == "conv3" and opts.checkpoint_every == 200 and kw == {"model": "m"}


@pytest.mark.parametrize(
    "kw,needle",
    [
        ({}, "train-generator needs --layer; e.g. --layer"),
        ({"layer": "conv3"}, "train-generator needs --images; e.g. --images"),
        ({"layer": "conv3", "images": "photos"}, "train-generator needs --out; e.g. --out gen.pt"),
    ],
)
def test_missing_required_flags(kw, needle):
    with pytest.raises(InputError, match=needle):
        TrainCommandOptions(**kw).check()
    TrainCommandOptions(layer="l", images="i", out="o.pt").check()


def test_checkpoint_every_is_checked():
    with pytest.raises(InputError, match="--checkpoint-every must be >= 0, got -1"):
        TrainCommandOptions(checkpoint_every=-1)


def test_importing_the_settings_does_not_load_torch():
    code = "import sys, cnnvis.priors.train_config; assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
