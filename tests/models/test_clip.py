"""CLIP image towers through open_clip (the [clip] extra), random weights and offline: layers and
layouts, text objectives that raise the image-text cosine, local weights read as data."""

from __future__ import annotations

import pytest
import torch
from conftest import assert_one_line_error, invoke

open_clip = pytest.importorskip("open_clip")

from cnnvis import Render, RenderConfig  # noqa: E402
from cnnvis.canvas.start import Start  # noqa: E402
from cnnvis.models.registry import load_model  # noqa: E402
from cnnvis.objectives.spec import parse_objective  # noqa: E402
from cnnvis.objectives.text import TextSimilarity, text_encoder_of  # noqa: E402

NAME = "clip:ViT-S-32"  # open_clip's smallest ViT tower


@pytest.fixture(scope="module")
def clip():
    return load_model(NAME, weights="random")


def test_clip_tower_is_a_fixed_size_token_model(clip):
    assert clip.fixed_size and clip.input_size == 224
    assert clip.mean == pytest.approx(open_clip.OPENAI_DATASET_MEAN)
    with clip.capture(["visual.transformer.resblocks.5", "embed"]) as cap:
        feats = cap(clip.normalize(torch.rand(2, 3, 224, 224)))
        assert cap.prefix["visual.transformer.resblocks.5"].shape == (2, 1, 384)
    assert feats["visual.transformer.resblocks.5"].shape == (2, 384, 7, 7)
    assert feats["embed"].shape == (2, 384)


def test_text_objective_raises_the_cosine(clip):
    w, layer, obj = parse_objective("text:a city made of glass@2", text_encoder=text_encoder_of(clip.module))
    assert (w, layer) == (2.0, None) and isinstance(obj, TextSimilarity)
    assert float(obj.text.norm()) == pytest.approx(1.0, abs=1e-5)
    log = []
    cfg = RenderConfig(steps=5, lr=0.05, seed=0)
    Render(clip, obj, cfg, Start(init=None), device="cpu").run(log.append)
    assert -1 <= log[0].score < log[-1].score <= 1


def test_text_dream_at_a_tiled_size_and_negative_weights(tmp_path):
    out = tmp_path / "glass.png"
    args = ["dream", "--model", NAME, "--weights", "random", "-O", "text:glass", "-O", "text:fog@-1"]
    res = invoke([*args, "--final-size", "200x300", "--octaves", 1, "--steps", 1, "-q", "-o", out])
    assert res.exit_code == 0, res.output
    import imageio.v3 as iio

    assert iio.imread(out).shape[:2] == (200, 300)


def test_local_weights_are_read_as_data(tmp_path, clip):
    path = tmp_path / "tower.pt"
    model = open_clip.create_model("ViT-S-32", pretrained=None)
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    loaded = load_model(NAME, weights=str(path))
    assert loaded.weights_sha256 is not None
    a = loaded.module.visual.conv1.weight
    assert torch.equal(a, model.visual.conv1.weight)


@pytest.mark.parametrize(
    ("model", "words"),
    [
        ("clip:ViT-Q-99", "unknown CLIP model 'ViT-Q-99'"),
        ("clip:ViT-B-32@nosuchtag", "unknown weights 'nosuchtag' for CLIP 'ViT-B-32'; use one of openai"),
    ],
)
def test_bad_clip_names_are_one_line(model, words, tmp_path):
    res = invoke(["prefer", "--model", model, "-O", "text:x", "-o", tmp_path / "x.png"])
    assert_one_line_error(res, words)


def test_pretrained_weights_offline_name_the_file(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no retries: this machine is offline
    res = invoke(["prefer", "--model", "clip:ViT-B-32", "-O", "text:x", "-o", tmp_path / "x.png"])
    assert_one_line_error(res, "huggingface.co/timm/vit_base_patch32_clip_224.openai", "--weights FILE")
