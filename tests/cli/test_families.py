"""Every vision family in every command: ViT, DeiT, Swin, ConvNeXt, EfficientNet, ResNet, RegNet,
MobileNetV3 and a hybrid (MaxViT), offline with random weights, at their tiniest variants.

Each family lists its layers with their layouts, dreams at 300x400 (tiled), renders a preferred
image of a channel and of a neuron, and inverts a photo; a few steps on a channel raise its score;
and a two-octave dream on a ViT (its first canvas smaller than a tile) feeds it only 224x224."""

from __future__ import annotations

import imageio.v3 as iio
import pytest
from conftest import assert_one_line_error, invoke

from cnnvis import Channel, Render, RenderConfig
from cnnvis.canvas.start import Start
from cnnvis.models.registry import load_model

# family -> (model, a layer whose channels are units, its layout in `cnnvis layers`)
FAMILIES = {
    "vit": ("timm:vit_tiny_patch16_224", "blocks.2.mlp.fc1", "tokens+1"),
    "deit": ("timm:deit_tiny_distilled_patch16_224", "blocks.2", "tokens+2"),
    "swin": ("timm:swin_tiny_patch4_window7_224", "layers.1", "nhwc"),
    "convnext": ("timm:convnext_atto", "stages.1", "nchw"),
    "efficientnet": ("efficientnet-lite0", "blocks.3", "nchw"),
    "resnet": ("timm:resnet10t", "layer2", "nchw"),
    "regnet": ("timm:regnetx_002", "s2", "nchw"),
    "mobilenetv3": ("timm:mobilenetv3_small_050", "blocks.2", "nchw"),
    "maxvit": ("timm:maxvit_pico_rw_256", "stages.1", "nchw"),
}


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    import skimage.data

    path = tmp_path_factory.mktemp("photo") / "coffee.png"
    iio.imwrite(path, skimage.data.coffee()[::2, ::2])
    return path


@pytest.mark.parametrize("family", FAMILIES)
def test_every_command_runs(family, tmp_path, photo):
    model, layer, layout = FAMILIES[family]
    m = ["--model", model, "--weights", "random"]
    res = invoke(["layers", model])
    assert res.exit_code == 0, res.output
    row = next(line.split() for line in res.output.splitlines() if line.split()[:1] == [layer])
    assert row[3] == layout
    runs = {
        "dream.png": ["dream", *m, "--layer", layer, "--final-size", "300x400", "--octaves", 1, "--steps", 1],
        "channel.png": ["prefer", *m, "--layer", layer, "--channel", 3, "--steps", 2],
        "neuron.png": ["prefer", *m, "--layer", layer, "--channel", 3, "--x", 1, "--y", 2, "--steps", 2],
        "invert.png": ["invert", photo, *m, "--layer", layer, "--steps", 2],
    }
    for name, args in runs.items():
        res = invoke([*args, "-q", "-o", tmp_path / name])
        assert res.exit_code == 0, f"{name}: {res.output}"
        assert res.exception is None or isinstance(res.exception, SystemExit)
        assert iio.imread(tmp_path / name).ndim == 3
    assert iio.imread(tmp_path / "dream.png").shape[:2] == (300, 400)


@pytest.mark.parametrize("family", ["vit", "swin", "maxvit", "resnet"])
def test_a_channel_objective_rises(family):
    import torch

    model_name, layer, _ = FAMILIES[family]
    torch.manual_seed(0)  # random weights, the same in every run
    model = load_model(model_name, weights="random")
    with model.capture([layer]) as cap, torch.no_grad():
        a = cap(model.normalize(torch.rand(1, 3, model.input_size, model.input_size)))[layer]
    channel = int(a.flatten(2).mean(2)[0].argmax())  # a live channel: random ReLU networks have dead ones
    cfg = RenderConfig(steps=6, lr=0.05, seed=1)
    log = []
    Render(model, Channel(layer, channel), cfg, Start(init=None), device="cpu").run(log.append)
    assert log[-1].score > log[0].score + 1e-3


def test_a_fixed_size_model_sees_only_its_input_size(tmp_path):
    """A 300x400 dream in two octaves (the first 210x280, smaller than a tile) on a ViT: every
    forward pass gets exactly 224x224."""
    model = load_model("timm:vit_tiny_patch16_224", weights="random")
    seen = set()
    model.module.patch_embed.register_forward_pre_hook(lambda mod, i: seen.add(tuple(i[0].shape[-2:])))
    cfg = RenderConfig(steps=1, final_size="300x400", octaves=2, octave_scale=1.4)
    out = Render(model, Channel("blocks.1", 0), cfg, Start(init=None), device="cpu").run()
    assert tuple(out.shape[-2:]) == (300, 400) and seen == {(224, 224)}


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["prefer", "--layer", "blocks.0.attn.q_norm", "--channel", 0], "has no units to address"),
        (["prefer", "--layer", "patch_embed", "--channel", 0, "--token", "cls"], "has no prefix tokens"),
        (["prefer", "--layer", "blocks.1", "--channel", 0, "--token", 1], "token 1 is out of range"),
        (["prefer", "--layer", "blocks.1", "--channel", 500], "channel 500 is out of range"),
        (["dream", "--layer", "blocks.1", "--tile", 300], "takes only 224x224 input"),
        (["prefer", "-O", "text:a cat"], "text objectives need a CLIP model"),
    ],
)
def test_bad_input_on_a_vit_is_one_line(args, words, tmp_path):
    res = invoke([*args, "--model", "timm:vit_tiny_patch16_224", "--weights", "random", "-o", tmp_path / "x.png"])
    assert_one_line_error(res, words)


def test_token_objective_reads_the_class_token(tmp_path):
    m = ["--model", "timm:deit_tiny_distilled_patch16_224", "--weights", "random", "--steps", 2, "-q"]
    res = invoke(["prefer", *m, "--layer", "blocks.1", "--channel", 4, "--token", "cls", "-o", tmp_path / "t.png"])
    assert res.exit_code == 0, res.output
    res = invoke(["prefer", *m, "-O", "token:blocks.1:1:4", "-o", tmp_path / "d.png"])  # the distillation token
    assert res.exit_code == 0, res.output


def test_a_vit_run_replays_bit_for_bit(tmp_path):
    """Random weights are seeded, so a run on them (a ViT here) replays from its manifest."""
    out = tmp_path / "p.png"
    m = ["--model", "timm:deit_tiny_patch16_224", "--weights", "random"]
    res = invoke(["prefer", *m, "--layer", "blocks.3", "--channel", 3, "--steps", 2, "-q", "-o", out])
    assert res.exit_code == 0, res.output
    res = invoke(["replay", out, "--out", tmp_path / "again.png", "--check"])
    assert res.exit_code == 0 and "bit for bit" in res.output, res.output
