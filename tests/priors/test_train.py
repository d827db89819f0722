"""Training a generator that inverts a layer (DeePSiM losses), checkpoints and exact resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnvis.errors import InputError
from cnnvis.models.registry import LoadedModel
from cnnvis.priors.train import GeneratorTrainer, TrainConfig, layer_geometry, load_image_folder


def _images(n=3, size=40):
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        low = torch.rand(1, 3, 4, 4, generator=g)
        out.append(F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)[0])
    return out


def _cfg(**kw):
    base = dict(steps=6, batch_size=2, size=16, width=8, lr=2e-3, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def _held_out_pixel_loss(trainer: GeneratorTrainer, batch: torch.Tensor) -> float:
    with trainer.capture, torch.no_grad():
        z = trainer._features(batch)[trainer.layer]
        return float(F.mse_loss(trainer.generator(z), batch))


def test_training_lowers_the_reconstruction_error(tiny_model):
    t = GeneratorTrainer(
        tiny_model,
        "relu2",
        _images(),
        _cfg(steps=100, lr=4e-3, feature_weight=0.05, grid_weight=0.0, lattice_weight=0.0),
    )
    held = torch.stack([F.interpolate(im[None], size=(16, 16), mode="area")[0] for im in _images()])
    before = _held_out_pixel_loss(t, held)
    seen = []
    gen = t.run(lambda p: seen.append(p.losses))
    assert len(seen) == 100 and set(seen[0]) == {"pixel", "feature"}
    after = _held_out_pixel_loss(t, held)
    assert after < 0.75 * before, (before, after)
    assert not gen.training
    upper = t.latent_upper()
    assert upper.shape == (16,) and torch.all(upper >= 0) and float(upper.max()) > 0


def test_resume_from_a_checkpoint_is_exact(tiny_model):
    straight = GeneratorTrainer(tiny_model, "relu2", _images(), _cfg(steps=6, adv_weight=0.1))
    straight.run()
    first = GeneratorTrainer(tiny_model, "relu2", _images(), _cfg(steps=6, adv_weight=0.1))
    first.run(stop=lambda: first.step >= 3)
    assert first.step == 3
    ck = first.checkpoint()
    torch.manual_seed(12345)  # whatever happened to the global generator meanwhile
    second = GeneratorTrainer(tiny_model, "relu2", _images(), _cfg(steps=6, adv_weight=0.1))
    second.load_checkpoint(ck)
    second.run()
    assert second.step == 6
    for (k, a), b in zip(straight.generator.state_dict().items(), second.generator.state_dict().values()):
        assert torch.equal(a, b), k
    assert torch.equal(straight.latent_upper(), second.latent_upper())


def test_adversarial_term_trains_a_discriminator(tiny_model):
    t = GeneratorTrainer(tiny_model, "relu2", _images(), _cfg(steps=3, adv_weight=0.5))
    seen = []
    t.run(lambda p: seen.append(p.losses))
    assert {"adv", "disc"} <= set(seen[-1])
    assert all(np.isfinite(list(s.values())).all() for s in seen)


def test_checkpoint_from_other_settings_is_refused(tiny_model):
    ck = GeneratorTrainer(tiny_model, "relu2", _images(), _cfg()).checkpoint()
    other = GeneratorTrainer(tiny_model, "relu2", _images(), _cfg(width=4))
    with pytest.raises(InputError, match=r"other settings \(width\)"):
        other.load_checkpoint(ck, "x.ckpt")
    with pytest.raises(InputError, match="not a train-generator checkpoint"):
        other.load_checkpoint({"step": 1}, "x.ckpt")
    # more steps is allowed: that is how a finished run is continued
    GeneratorTrainer(tiny_model, "relu2", _images(), _cfg(steps=50)).load_checkpoint(ck)


def test_layer_checks(tiny_model):
    assert layer_geometry(tiny_model, "relu2", "cpu") == (16, 2, (16, 16))
    with pytest.raises(InputError, match="power-of-two stride"):
        GeneratorTrainer(tiny_model, "conv1", _images(), _cfg())
    with pytest.raises(InputError, match="not a multiple of layer 'relu2''s stride 2"):
        GeneratorTrainer(tiny_model, "relu2", _images(), _cfg(size=15))
    flat = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2, padding=1), torch.nn.Flatten())
    m = LoadedModel("flat", flat.eval(), (0.5,) * 3, (0.5,) * 3, 32, 8)
    with pytest.raises(InputError, match="inverts spatial layers"):
        layer_geometry(m, "1", "cpu")


@pytest.mark.parametrize(
    "kw,needle",
    [
        (dict(steps=0), r"--steps must be >= 1, got 0"),
        (dict(scale_min=0.0), r"--scale-min must be in \(0, 1\]"),
        (dict(adv_weight=-1.0), r"--adv-weight must be >= 0, got -1.0"),
        (dict(lr=0.0), r"--lr must be > 0"),
        (dict(upsample="cubic"), r"unknown --upsample 'cubic'; use one of transposed, nearest, bilinear"),
    ],
)
def test_bad_settings(kw, needle):
    with pytest.raises(InputError, match=needle):
        _cfg(**kw)


def test_image_folder(tmp_path, make_image):
    with pytest.raises(InputError, match="image folder not found"):
        load_image_folder(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images in"):
        load_image_folder(str(tmp_path / "empty"))
    make_image("a.png", h=20, w=30)
    make_image("b.jpg", h=24, w=24)
    (tmp_path / "notes.txt").write_text("not an image")
    imgs = load_image_folder(str(tmp_path))
    assert [tuple(i.shape) for i in imgs] == [(3, 20, 30), (3, 24, 24)]


def _held_out_grid_term(trainer: GeneratorTrainer, batch: torch.Tensor) -> float:
    from cnnvis.canvas.stride_grid import phase_profile

    with trainer.capture, torch.no_grad():
        out = trainer.generator(trainer._features(batch)[trainer.layer])
        return float((phase_profile(out, trainer.generator.stride) - 1).pow(2).mean())


def test_the_seam_term_flattens_the_drawings_grid(tiny_model):
    held = torch.stack([F.interpolate(im[None], size=(32, 32), mode="area")[0] for im in _images(4, 48)])
    terms = {}
    for weight in (0.0, 5.0):
        t = GeneratorTrainer(
            tiny_model, "relu2", _images(), _cfg(steps=40, size=32, lr=4e-3, grid_weight=weight, upsample="nearest")
        )
        seen = []
        t.run(lambda p: seen.append(p.losses))
        assert ("grid" in seen[-1]) == (weight > 0)
        terms[weight] = _held_out_grid_term(t, held)
    print(terms)
    assert terms[5.0] < 0.5 * terms[0.0], terms


def test_the_lattice_term_is_reported_and_trained_only_when_weighted(tiny_model):
    """Off by default (it cost the demo generator deep-layer inversion quality); on, it is a loss term."""
    assert TrainConfig().lattice_weight == 0
    seen = []
    GeneratorTrainer(tiny_model, "relu2", _images(), _cfg(steps=2, lattice_weight=0.01)).run(
        lambda p: seen.append(p.losses)
    )
    assert all("lattice" in s and s["lattice"] >= 0 for s in seen)
    plain = []
    GeneratorTrainer(tiny_model, "relu2", _images(), _cfg(steps=1)).run(lambda p: plain.append(p.losses))
    assert "lattice" not in plain[0]
