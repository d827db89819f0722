"""Forward hooks: captured layers, hook removal, early stop, unknown names, pre-activation outputs."""

from __future__ import annotations

import pytest
import torch
from conftest import build_tiny_cnn

from cnnvis import FeatureCapture, InputError, list_layers
from cnnvis.models.capture import check_layers, layer_names
from cnnvis.models.registry import disable_inplace


def _hook_count(module):
    return sum(len(m._forward_hooks) for m in module.modules())


def test_captures_requested_layers_with_shapes(tiny_model):
    x = torch.rand(2, 3, 32, 40)
    with FeatureCapture(tiny_model.module, ["conv1", "conv3", "conv1"]) as cap:
        feats = cap(x)
    assert set(feats) == {"conv1", "conv3"}
    assert feats["conv1"].shape == (2, 8, 32, 40)
    assert feats["conv3"].shape == (2, 16, 16, 20)
    with torch.no_grad():
        assert torch.allclose(feats["conv3"], tiny_model.module(x))
        assert torch.allclose(feats["conv1"], tiny_model.module.conv1(x))


def test_hooks_removed_after_block_even_on_error(tiny_model):
    net = tiny_model.module
    assert _hook_count(net) == 0
    with FeatureCapture(net, ["conv2", "conv3"]) as cap:
        assert _hook_count(net) == 2
        cap(torch.rand(1, 3, 16, 16))
    assert _hook_count(net) == 0
    with pytest.raises(ZeroDivisionError):
        with FeatureCapture(net, ["conv2"]):
            assert _hook_count(net) == 1
            1 / 0
    assert _hook_count(net) == 0


def test_stop_early_skips_later_layers(tiny_model):
    net = tiny_model.module
    with FeatureCapture(net, ["conv1"]) as cap:
        cap(torch.rand(1, 3, 16, 16))  # the one probe pass of the layouts runs the whole network, once per module
    calls = []
    h = net.conv3.register_forward_hook(lambda *a: calls.append(1))
    try:
        with FeatureCapture(net, ["conv1"]) as cap:
            feats = cap(torch.rand(1, 3, 16, 16))
            cap(torch.rand(1, 3, 16, 16))
        assert "conv1" in feats and calls == []
        with FeatureCapture(net, ["conv1"], stop_early=False) as cap:
            cap(torch.rand(1, 3, 16, 16))
        assert calls == [1]
    finally:
        h.remove()


def test_gradient_flows_through_capture(tiny_model):
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    with FeatureCapture(tiny_model.module, ["conv2"]) as cap:
        a = cap(x)["conv2"]
    (g,) = torch.autograd.grad(a.pow(2).sum(), x)
    assert g.abs().sum() > 0


def test_unknown_layer_suggests_close_match(tiny_model):
    with pytest.raises(InputError) as e:
        FeatureCapture(tiny_model.module, ["conv33"], model_name="tiny")
    msg = str(e.value)
    assert "'conv33'" in msg and "did you mean 'conv3'" in msg and "cnnvis layers tiny" in msg
    with pytest.raises(InputError) as e:
        check_layers(tiny_model.module, ["conv1", "zzzzzz"])
    assert "'zzzzzz'" in str(e.value) and "did you mean" not in str(e.value)


@pytest.mark.parametrize("out_of_place", [False, True])
def test_pre_relu_output_keeps_negative_values(out_of_place):
    net = build_tiny_cnn(inplace=True)
    if out_of_place:
        disable_inplace(net)
        assert net.relu1.inplace is False
    else:
        assert net.relu1.inplace is True
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        direct = net.conv1(x)
    assert float(direct.min()) < 0
    with FeatureCapture(net, ["conv1", "conv3"]) as cap, torch.no_grad():
        feats = cap(x)
    # relu1 ran after the hook (conv3 was captured), yet conv1's output was not clipped in place.
    assert float(feats["conv1"].min()) < 0
    assert torch.equal(feats["conv1"], direct)


def test_disable_inplace_on_real_model(lite0):
    assert not any(getattr(m, "inplace", False) is True for m in lite0.module.modules())


def test_list_layers_rows(tiny_model):
    rows = list_layers(tiny_model.module, torch.zeros(1, 3, 32, 32))
    assert [r[0] for r in rows] == ["conv1", "relu1", "conv2", "relu2", "conv3"] == layer_names(tiny_model.module)
    d = {r.name: (r.type, r.shape) for r in rows}
    assert d["conv1"] == ("Conv2d", (1, 8, 32, 32))
    assert d["relu2"] == ("ReLU", (1, 16, 16, 16))
    assert d["conv3"] == ("Conv2d", (1, 16, 16, 16))
    assert _hook_count(tiny_model.module) == 0


def test_list_layers_real_model(lite0):
    rows = {r.name: r for r in list_layers(lite0.module, torch.zeros(1, 3, 64, 64))}
    assert (rows["blocks.4.2"].type, rows["blocks.4.2"].shape) == ("InvertedResidual", (1, 112, 4, 4))
    assert rows["conv_stem"].shape == (1, 32, 32, 32)
    assert {r.layout.kind for r in rows.values() if r.layout} == {"nchw", "vector"}
    assert rows["classifier"].map_shape == (1000,) and rows["blocks.4.2"].map_shape == (112, 4, 4)
    assert _hook_count(lite0.module) == 0


def test_pre_activation_reachable_on_embedded_model(lite0):
    """timm's BatchNormAct2d applies ReLU6 after its `drop`: hooking `.drop` gives pre-activation values."""
    import cv2
    import skimage.data

    img = cv2.resize(skimage.data.coffee(), (224, 224), interpolation=cv2.INTER_AREA).astype("float32") / 255
    x = lite0.normalize(torch.from_numpy(img).permute(2, 0, 1)[None])
    pre, post = "blocks.4.2.bn1.drop", "blocks.4.2.bn1"
    with FeatureCapture(lite0.module, [pre, post], stop_early=False) as cap, torch.no_grad():
        feats = cap(x)
    assert float(feats[post].min()) >= 0 and float(feats[post].max()) <= 6
    assert float(feats[pre].min()) < 0 and float(feats[pre].max()) > 6  # not clipped by ReLU6
    assert torch.equal(feats[pre].clamp(0, 6), feats[post])


def test_resolve_layer_pre_and_post(lite0, tiny_model):
    from cnnvis.models.capture import resolve_layer

    m = lite0.module
    assert resolve_layer(m, "blocks.0.0.bn1", "pre") == "blocks.0.0.bn1.drop"  # BN+ReLU6 in one module
    assert resolve_layer(m, "blocks.3", "pre") == "blocks.3"  # linear bottleneck: no activation
    t = tiny_model.module
    assert resolve_layer(t, "conv1", "post") == "relu1"
    assert resolve_layer(t, "relu1", "pre") == "conv1"
    assert resolve_layer(t, "conv3", "post") == "conv3"
    with pytest.raises(InputError, match="unknown layer"):
        resolve_layer(t, "conv9")
