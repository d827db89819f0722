"""Activation layouts probed from real timm architectures (random weights, offline): what each
layer's output is, and how it becomes the (B, C, h, w) map that objectives address."""

from __future__ import annotations

import pytest
import timm
import torch

from cnnvis import FeatureCapture, InputError
from cnnvis.models.layouts import NCHW, NHWC, TOKENS, UNMAPPABLE, VECTOR, Layout, known_layouts, to_map, token_grid
from cnnvis.models.registry import load_model


def _frozen(module):
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


@pytest.fixture(scope="module")
def vit():
    return load_model("timm:deit_tiny_distilled_patch16_224", weights="random")


@pytest.fixture(scope="module")
def swin():
    # a two-stage Swin with timm's layout code, small enough for the suite
    return _frozen(timm.create_model("swin_tiny_patch4_window7_224", depths=(1, 1), num_heads=(1, 2), embed_dim=24))


def _layouts(module, side=224):
    with FeatureCapture(module, []) as cap:
        cap(torch.zeros(1, 3, side, side))
    return known_layouts(module)


def test_vit_tokens_carry_the_models_prefix(vit):
    layouts = _layouts(vit.module)
    assert layouts["blocks.2"] == Layout(TOKENS, prefix=2)  # class and distillation tokens
    assert layouts["blocks.2.mlp.fc1"].kind == TOKENS
    assert layouts["patch_embed.proj"].kind == NCHW
    assert layouts["blocks.2.attn.q_norm"].kind == UNMAPPABLE  # (B, heads, N, head_dim)
    assert layouts["head"].kind == VECTOR


def test_vit_capture_maps_patch_tokens_and_splits_the_prefix(vit):
    x = torch.rand(2, 3, 224, 224)
    raw = {}
    hook = dict(vit.module.named_modules())["blocks.3"].register_forward_hook(lambda m, i, o: raw.update(t=o))
    try:
        with vit.capture(["blocks.3", "patch_embed"]) as cap:
            feats = cap(vit.normalize(x))
            prefix = cap.prefix
    finally:
        hook.remove()
    t = raw["t"]
    assert feats["blocks.3"].shape == (2, 192, 14, 14) and prefix["blocks.3"].shape == (2, 2, 192)
    # patch (row i, column j) is token 2 + 14 i + j, row-major after the prefix
    assert torch.equal(feats["blocks.3"][1, 5, 3, 7], t[1, 2 + 14 * 3 + 7, 5])
    assert torch.equal(prefix["blocks.3"], t[:, :2])
    assert feats["patch_embed"].shape == (2, 192, 14, 14) and "patch_embed" not in prefix


def test_fixed_size_model_sees_its_input_size(vit):
    seen = []
    hook = vit.module.patch_embed.register_forward_pre_hook(lambda m, i: seen.append(tuple(i[0].shape[-2:])))
    try:
        with vit.capture(["blocks.1"]) as cap:
            feats = cap(vit.normalize(torch.rand(1, 3, 100, 150)))
    finally:
        hook.remove()
    assert vit.fixed_size and vit.input_size == 224
    assert set(seen) == {(224, 224)} and feats["blocks.1"].shape[-2:] == (14, 14)


def test_swin_stages_are_channels_last_and_windows_unmappable(swin):
    layouts = _layouts(swin)
    assert layouts["layers.1"].kind == NHWC and layouts["layers.0.blocks.0"].kind == NHWC
    assert layouts["layers.0.blocks.0.mlp.fc1"].kind == TOKENS  # (B, h*w, C) without prefix
    assert layouts["layers.0.blocks.0.attn"].kind == UNMAPPABLE  # (B * windows, 49, C)
    x = torch.rand(1, 3, 224, 224)
    raw = {}
    hook = dict(swin.named_modules())["layers.1"].register_forward_hook(lambda m, i, o: raw.update(t=o))
    try:
        with FeatureCapture(swin, ["layers.1", "layers.0.blocks.0.mlp.fc1"]) as cap:
            feats = cap(x)
    finally:
        hook.remove()
    assert torch.equal(feats["layers.1"], raw["t"].permute(0, 3, 1, 2))
    assert feats["layers.0.blocks.0.mlp.fc1"].shape == (1, 96, 56, 56)


def test_unmappable_layer_is_one_line(swin):
    with pytest.raises(InputError, match=r"layers.0.blocks.0.attn' gives .* not the batch.*pick a layer with"):
        with FeatureCapture(swin, ["layers.0.blocks.0.attn"]) as cap:
            cap(torch.rand(1, 3, 224, 224))


def test_convnext_mlp_is_channels_last_inside_a_channels_first_block():
    net = _frozen(timm.create_model("convnext_atto", conv_mlp=False))
    layouts = _layouts(net)
    assert layouts["stages.1.blocks.0.mlp.fc1"].kind == NHWC
    assert layouts["stages.1.blocks.0.norm"].kind == NHWC
    assert layouts["stages.1.blocks.0"].kind == NCHW and layouts["stages.1"].kind == NCHW


def test_residual_branch_after_a_window_reversal_keeps_the_blocks_layout():
    net = _frozen(timm.create_model("maxvit_pico_rw_256"))
    layouts = _layouts(net, 256)
    assert layouts["stages.1.blocks.0.attn_block"].kind == NHWC
    assert layouts["stages.1.blocks.0.attn_block.ls1"].kind == NHWC
    assert layouts["stages.1.blocks.0"].kind == NCHW


@pytest.mark.parametrize(
    ("n", "hw", "grid"),
    [
        (196, (224, 224), (14, 14)),
        (300, (240, 320), (15, 20)),
        (35, (100, 150), (5, 7)),
        (12, (48, 64), (3, 4)),
        (7, (224, 224), None),
    ],
)
def test_token_grid(n, hw, grid):
    assert token_grid(n, hw) == grid


def test_tokens_without_a_grid_say_so():
    with pytest.raises(InputError, match="form no patch grid at 224x224"):
        to_map("x", torch.zeros(1, 7, 4), Layout(TOKENS), (224, 224))
