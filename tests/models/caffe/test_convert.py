"""CaffeNet: numerical round trips against nets written directly in PyTorch, Caffe's pooling
arithmetic against a hand-written reference, hook points, saved files and bad input."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnvis.errors import InputError
from cnnvis.models.caffe import CaffeNet, convert_caffe, load_converted, parse_prototxt, proto, save_converted
from cnnvis.models.caffe.layers import CaffeLRNWithin, CaffePooling
from cnnvis.models.capture import FeatureCapture, resolve_layer

ATOL = 1e-5


def _blob(arr, legacy: bool = False):
    arr = np.asarray(arr, dtype=np.float32)
    b = proto.BlobProto()
    if legacy:
        b.num, b.channels, b.height, b.width = (1,) * (4 - arr.ndim) + arr.shape
    else:
        b.shape.dim.extend(arr.shape)
    b.data.extend(arr.ravel().tolist())
    return b


def write_caffemodel(path, weights: dict[str, list], v1: bool = False) -> str:
    """A trained-net file as Caffe writes it: a binary NetParameter whose layers carry blobs."""
    net = proto.NetParameter(name="trained")
    for name, arrays in weights.items():
        layer = net.layers.add(name=name) if v1 else net.layer.add(name=name)
        layer.blobs.extend(_blob(a.detach().numpy() if isinstance(a, torch.Tensor) else a, legacy=v1) for a in arrays)
    with open(path, "wb") as f:
        f.write(net.SerializeToString())
    return str(path)


def _text(tmp_path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


# ------------------------------------------------------------------------------- a mini GoogLeNet
MINI = """
name: "mini"
input: "data"
input_shape { dim: 1 dim: 3 dim: 20 dim: 20 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 3 pad: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "norm1" type: "LRN" bottom: "conv1" top: "norm1" lrn_param { local_size: 3 alpha: 2 beta: 0.75 } }
layer { name: "pool1" type: "Pooling" bottom: "norm1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
        convolution_param { num_output: 12 kernel_size: 3 pad: 1 group: 2 } }
layer { name: "bn2" type: "BatchNorm" bottom: "conv2" top: "conv2" batch_norm_param { eps: 0.001 } }
layer { name: "scale2" type: "Scale" bottom: "conv2" top: "conv2" scale_param { bias_term: true } }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "inc/1x1" type: "Convolution" bottom: "conv2" top: "inc/1x1"
        convolution_param { num_output: 4 kernel_size: 1 } }
layer { name: "inc/relu_1x1" type: "ReLU" bottom: "inc/1x1" top: "inc/1x1" }
layer { name: "inc/3x3_reduce" type: "Convolution" bottom: "conv2" top: "inc/3x3_reduce"
        convolution_param { num_output: 4 kernel_size: 1 } }
layer { name: "inc/relu_3x3_reduce" type: "ReLU" bottom: "inc/3x3_reduce" top: "inc/3x3_reduce" }
layer { name: "inc/3x3" type: "Convolution" bottom: "inc/3x3_reduce" top: "inc/3x3"
        convolution_param { num_output: 6 kernel_size: 3 pad: 1 } }
layer { name: "inc/relu_3x3" type: "ReLU" bottom: "inc/3x3" top: "inc/3x3" }
layer { name: "inc/pool" type: "Pooling" bottom: "conv2" top: "inc/pool"
        pooling_param { pool: MAX kernel_size: 3 stride: 1 pad: 1 } }
layer { name: "inc/pool_proj" type: "Convolution" bottom: "inc/pool" top: "inc/pool_proj"
        convolution_param { num_output: 4 kernel_size: 1 } }
layer { name: "inc/relu_pool_proj" type: "ReLU" bottom: "inc/pool_proj" top: "inc/pool_proj" }
layer { name: "inc/output" type: "Concat" bottom: "inc/1x1" bottom: "inc/3x3" bottom: "inc/pool_proj"
        top: "inc/output" }
layer { name: "inc/sum" type: "Eltwise" bottom: "inc/1x1" bottom: "inc/pool_proj" top: "inc/sum"
        eltwise_param { coeff: 1 coeff: -0.5 } }
layer { name: "cat2" type: "Concat" bottom: "inc/output" bottom: "inc/sum" top: "cat2" }
layer { name: "pool2" type: "Pooling" bottom: "cat2" top: "pool2"
        pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "pool3" type: "Pooling" bottom: "pool2" top: "pool3" pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "pool3" top: "fc" inner_product_param { num_output: 10 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def mini_weights(seed: int = 0) -> dict[str, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=0.5):
        return torch.randn(*shape, generator=g) * scale

    return {
        "conv1": [r(8, 3, 3, 3), r(8)],
        "conv2": [r(12, 4, 3, 3), r(12)],
        # Caffe's BatchNorm stores running sums and their scale factor (here 2): mean = blob / 2.
        "bn2": [r(12) * 2, (torch.rand(12, generator=g) + 0.5) * 2, torch.tensor([2.0])],
        "scale2": [torch.rand(12, generator=g) + 0.5, r(12)],
        "inc/1x1": [r(4, 12, 1, 1), r(4)],
        "inc/3x3_reduce": [r(4, 12, 1, 1), r(4)],
        "inc/3x3": [r(6, 4, 3, 3), r(6)],
        "inc/pool_proj": [r(4, 12, 1, 1), r(4)],
        "fc": [r(10, 18), r(10)],
    }


def mini_reference(w: dict[str, list[torch.Tensor]], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The mini net in plain torch ops (torch's ceil-mode pooling matches Caffe's for pad <= k/2)."""
    out = {}
    c1 = F.conv2d(x, *w["conv1"], padding=1)
    out["conv1"] = c1
    r1 = F.relu(c1)
    out["relu1"] = r1
    n1 = F.local_response_norm(r1, 3, alpha=2.0, beta=0.75, k=1.0)
    p1 = F.max_pool2d(n1, 3, 2, ceil_mode=True)
    out["pool1"] = p1
    c2 = F.conv2d(p1, *w["conv2"], padding=1, groups=2)
    mean, var = w["bn2"][0] / 2, w["bn2"][1] / 2
    bn = (c2 - mean[:, None, None]) / torch.sqrt(var[:, None, None] + 1e-3)
    s2 = F.relu(bn * w["scale2"][0][:, None, None] + w["scale2"][1][:, None, None])
    a = F.relu(F.conv2d(s2, *w["inc/1x1"]))
    b = F.relu(F.conv2d(F.relu(F.conv2d(s2, *w["inc/3x3_reduce"])), *w["inc/3x3"], padding=1))
    c = F.relu(F.conv2d(F.max_pool2d(s2, 3, 1, 1), *w["inc/pool_proj"]))
    cat2 = torch.cat([a, b, c, a - 0.5 * c], 1)
    p2 = F.avg_pool2d(cat2, 3, 2, 1, ceil_mode=True, count_include_pad=True)
    out["pool2"] = p2
    fc = F.linear(p2.mean((2, 3)), *w["fc"])
    out["fc"] = fc
    out["prob"] = torch.softmax(fc, 1)
    return out


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    d = tmp_path_factory.mktemp("mini")
    w = mini_weights()
    proto_path = _text(d, "deploy.prototxt", MINI)
    model_path = write_caffemodel(d / "mini.caffemodel", {**w, "unused_in_prototxt": [torch.ones(3)]})
    return proto_path, model_path, w


@pytest.mark.parametrize("hw", [(20, 20), (21, 23), (24, 17), (13, 14)])
def test_mini_inception_round_trip(mini, hw):
    proto_path, model_path, w = mini
    net = convert_caffe(proto_path, model_path)
    x = torch.randn(2, 3, *hw, generator=torch.Generator().manual_seed(hw[0] * 100 + hw[1]))
    ref = mini_reference(w, x)
    with torch.no_grad():
        for blob in ("pool1", "pool2", "fc", "prob"):
            got = net(x, output=blob)
            assert got.shape == ref[blob].shape, blob
            torch.testing.assert_close(got, ref[blob], atol=ATOL, rtol=1e-5, msg=blob)
        torch.testing.assert_close(net(x), ref["prob"], atol=ATOL, rtol=1e-5)


def test_ceil_rule_changes_the_size(mini):
    # 20 -> conv 20 -> pool 3/2: Caffe ceil gives 10 (torch's floor default would give 9).
    net = convert_caffe(mini[0], mini[1])
    assert net.blob_shapes["pool1"] == (1, 8, 10, 10)
    assert net.blob_shapes["pool2"] == (1, 18, 6, 6) and net.blob_shapes["prob"] == (1, 10)


def test_layers_registered_in_prototxt_order_with_caffe_names(mini):
    net = convert_caffe(mini[0], mini[1])
    names = [n for n, _ in net.named_children()]
    assert names[:5] == ["conv1", "relu1", "norm1", "pool1", "conv2"]
    assert "inc/3x3" in names and names[-1] == "prob"
    assert net.layer_types["bn2"] == "BatchNorm" and net.caffe_names["inc/output"] == "inc/output"


def test_pre_and_post_relu_hook_points(mini):
    net = convert_caffe(mini[0], mini[1])
    x = torch.randn(1, 3, 20, 20, generator=torch.Generator().manual_seed(3))
    with FeatureCapture(net, ["conv1", "relu1", "inc/3x3"]) as cap:
        feats = cap(x)
    assert (feats["conv1"] < 0).any() and (feats["relu1"] >= 0).all()
    torch.testing.assert_close(feats["relu1"], feats["conv1"].clamp(min=0))
    torch.testing.assert_close(feats["conv1"], mini_reference(mini[2], x)["conv1"], atol=ATOL, rtol=1e-5)
    assert resolve_layer(net, "conv1", "post") == "relu1"
    assert resolve_layer(net, "relu1", "pre") == "conv1"
    assert resolve_layer(net, "conv1", "pre") == "conv1" and resolve_layer(net, "relu1", "post") == "relu1"
    assert net.post_activation("conv2") is None  # BatchNorm reads it first
    assert resolve_layer(net, "relu2", "pre") == "scale2" and net.post_activation("scale2") == "relu2"
    assert resolve_layer(net, "inc/3x3", "post") == "inc/relu_3x3"
    assert resolve_layer(net, "pool1", "post") == "pool1"


def test_random_weights_need_no_caffemodel(mini):
    net = CaffeNet(mini[0], weights=None)
    y = net(torch.rand(1, 3, 20, 20))
    assert y.shape == (1, 10) and torch.isfinite(y).all()


def test_save_and_load_converted(mini, tmp_path):
    net = convert_caffe(mini[0], mini[1])
    path = tmp_path / "mini.pt"
    save_converted(net, path, source="unit test", mean=[104.0, 117.0, 123.0])
    assert os.listdir(tmp_path) == ["mini.pt"]  # written atomically: no temp file left
    raw = torch.load(path, weights_only=True)
    assert raw["cnnvis_caffe"] == 1 and "layer" in raw["prototxt"] and "conv1.weight" in raw["state_dict"]
    back = load_converted(path)
    assert back.meta == {"source": "unit test", "mean": [104.0, 117.0, 123.0]}
    x = torch.rand(2, 3, 21, 19)
    with torch.no_grad():
        torch.testing.assert_close(back(x), net(x))
    with pytest.raises(InputError, match="not a converted Caffe net"):
        torch.save({"a": 1}, tmp_path / "other.pt")
        load_converted(tmp_path / "other.pt")
    with pytest.raises(InputError, match="meta value 'bad'"):
        save_converted(net, tmp_path / "x.pt", bad=object())


def test_output_blob_option(mini):
    net = CaffeNet(mini[0], mini[1], output="fc")
    x = torch.randn(1, 3, 20, 20)
    with torch.no_grad():
        torch.testing.assert_close(net(x), mini_reference(mini[2], x)["fc"], atol=ATOL, rtol=1e-5)
        # Caffe's blob semantics: after the in-place relu1, blob 'conv1' holds rectified values.
        assert (net(x, output="conv1") >= 0).all()
    with pytest.raises(InputError, match="unknown output blob 'nope'"):
        CaffeNet(mini[0], mini[1], output="nope")


# ------------------------------------------------------------------------------- V1 format
V1_NET = """
name: "CaffeNetV1"
input: "data"
input_dim: 1
input_dim: 3
input_dim: 17
input_dim: 17
layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1" blobs_lr: 1 blobs_lr: 2
         convolution_param { num_output: 6 kernel_size: 3 stride: 2 group: 1 } }
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }
layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layers { name: "norm1" type: LRN bottom: "pool1" top: "norm1" lrn_param { local_size: 5 alpha: 1 beta: 0.75 } }
layers { name: "fc6" type: INNER_PRODUCT bottom: "norm1" top: "fc6" inner_product_param { num_output: 5 } }
layers { name: "drop6" type: DROPOUT bottom: "fc6" top: "fc6" dropout_param { dropout_ratio: 0.5 } }
layers { name: "prob" type: SOFTMAX bottom: "fc6" top: "prob" }
"""


def test_v1_net_and_v1_caffemodel_with_legacy_blobs(tmp_path):
    g = torch.Generator().manual_seed(5)
    w = {
        "conv1": [torch.randn(6, 3, 3, 3, generator=g), torch.randn(6, generator=g)],
        "fc6": [torch.randn(5, 6 * 4 * 4, generator=g) * 0.1, torch.randn(5, generator=g)],
    }
    net = CaffeNet(_text(tmp_path, "v1.prototxt", V1_NET), write_caffemodel(tmp_path / "v1.caffemodel", w, v1=True))
    assert net.blob_shapes["pool1"] == (1, 6, 4, 4)  # 17 -> conv 8 -> pool: ceil(5 / 2) + 1 = 4 (floor: 3)
    x = torch.randn(3, 3, 17, 17, generator=g)
    c1 = F.relu(F.conv2d(x, *w["conv1"], stride=2))
    p1 = F.max_pool2d(c1, 3, 2, ceil_mode=True)
    ref = torch.softmax(F.linear(F.local_response_norm(p1, 5, 1.0, 0.75, 1.0).flatten(1), *w["fc6"]), 1)
    with torch.no_grad():
        torch.testing.assert_close(net(x), ref, atol=ATOL, rtol=1e-5)


# ------------------------------------------------------------------------------- every other layer type
ZOO = """
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 4 dim: 9 dim: 10 } } }
layer { name: "deconv" type: "Deconvolution" bottom: "data" top: "deconv"
        convolution_param { num_output: 6 kernel_size: 3 stride: 2 pad: 1 group: 2 } }
layer { name: "rect" type: "Convolution" bottom: "deconv" top: "rect"
        convolution_param { num_output: 4 kernel_h: 3 kernel_w: 1 pad_h: 2 pad_w: 0 stride_h: 1 stride_w: 2
                            dilation: 2 bias_term: false } }
layer { name: "prelu" type: "PReLU" bottom: "rect" top: "rect" }
layer { name: "elu" type: "ELU" bottom: "rect" top: "elu" elu_param { alpha: 0.5 } }
layer { name: "sig" type: "Sigmoid" bottom: "elu" top: "sig" }
layer { name: "tanh" type: "TanH" bottom: "elu" top: "tanh" }
layer { name: "split" type: "Split" bottom: "tanh" top: "t1" top: "t2" }
layer { name: "prod" type: "Eltwise" bottom: "sig" bottom: "t1" top: "prod" eltwise_param { operation: PROD } }
layer { name: "max" type: "Eltwise" bottom: "prod" bottom: "t2" top: "max" eltwise_param { operation: MAX } }
layer { name: "bias" type: "Bias" bottom: "max" top: "bias" }
layer { name: "power" type: "Power" bottom: "bias" top: "power" power_param { power: 2 scale: 0.5 shift: 1 } }
layer { name: "drop" type: "Dropout" bottom: "power" top: "power" }
layer { name: "slice" type: "Slice" bottom: "power" top: "s1" top: "s2" top: "s3"
        slice_param { axis: 1 slice_point: 1 slice_point: 3 } }
layer { name: "cat" type: "Concat" bottom: "s3" bottom: "s1" top: "cat" }
layer { name: "pool" type: "Pooling" bottom: "cat" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "crop" type: "Crop" bottom: "cat" bottom: "pool" top: "crop" crop_param { axis: 2 offset: 3 offset: 1 } }
layer { name: "scale_by" type: "Scale" bottom: "crop" bottom: "pool" top: "scaled" scale_param { axis: 0 } }
layer { name: "bias_by" type: "Bias" bottom: "scaled" bottom: "pool" top: "biased" bias_param { axis: 0 } }
layer { name: "silence" type: "Silence" bottom: "s2" }
layer { name: "flat" type: "Flatten" bottom: "biased" top: "flat" }
layer { name: "reshape" type: "Reshape" bottom: "flat" top: "reshaped"
        reshape_param { shape { dim: 0 dim: -1 dim: 2 } } }
layer { name: "fc" type: "InnerProduct" bottom: "reshaped" top: "fc"
        inner_product_param { num_output: 3 axis: 2 transpose: true } }
layer { name: "soft" type: "Softmax" bottom: "fc" top: "soft" softmax_param { axis: 2 } }
layer { name: "train_only" type: "Power" bottom: "soft" top: "soft" power_param { scale: 100 }
        include { phase: TRAIN } }
"""


def test_zoo_of_layer_types_matches_torch(tmp_path):
    g = torch.Generator().manual_seed(7)
    w = {
        "deconv": [torch.randn(4, 3, 3, 3, generator=g), torch.randn(6, generator=g)],
        "rect": [torch.randn(4, 6, 3, 1, generator=g) * 0.5],
        "prelu": [torch.rand(4, generator=g)],
        "bias": [torch.randn(4, generator=g)],
        "fc": [torch.randn(2, 3, generator=g), torch.randn(3, generator=g)],
    }  # transpose: stored (in, out)
    net = CaffeNet(_text(tmp_path, "zoo.prototxt", ZOO), write_caffemodel(tmp_path / "zoo.caffemodel", w))
    assert "silence" not in dict(net.named_children()) and "train_only" not in dict(net.named_children())
    x = torch.randn(2, 4, 9, 10, generator=g)
    d = F.conv_transpose2d(x, *w["deconv"], stride=2, padding=1, groups=2)
    r = F.prelu(F.conv2d(d, w["rect"][0], stride=(1, 2), padding=(2, 0), dilation=2), w["prelu"][0])
    e = F.elu(r, 0.5)
    mx = torch.maximum(torch.sigmoid(e) * torch.tanh(e), torch.tanh(e))
    pw = (1 + 0.5 * (mx + w["bias"][0][:, None, None])) ** 2
    cat = torch.cat([pw[:, 3:], pw[:, :1]], 1)
    pool = F.max_pool2d(cat, 2, 2, ceil_mode=True)
    biased = cat[:, :, 3 : 3 + pool.shape[2], 1 : 1 + pool.shape[3]] * pool + pool
    fc = biased.flatten(1).reshape(2, -1, 2) @ w["fc"][0] + w["fc"][1]
    with torch.no_grad():
        torch.testing.assert_close(net(x, output="deconv"), d, atol=ATOL, rtol=1e-5)
        torch.testing.assert_close(net(x, output="elu"), e, atol=ATOL, rtol=1e-5)
        torch.testing.assert_close(net(x, output="power"), pw, atol=ATOL, rtol=1e-5)
        torch.testing.assert_close(net(x, output="biased"), biased, atol=ATOL, rtol=1e-5)
        torch.testing.assert_close(net(x, output="fc"), fc, atol=ATOL, rtol=1e-5)
        torch.testing.assert_close(net(x), torch.softmax(fc, 2), atol=ATOL, rtol=1e-5)
    assert net.blob_shapes["pool"] == (1, 2, 9, 5) and net.blob_shapes["soft"] == (1, 45, 3)


def caffe_pool_reference(x: np.ndarray, method: str, k: int, s: int, p: int, ceil: bool = True) -> np.ndarray:
    """Caffe's pooling_layer.cpp forward, written out with loops."""
    n, c, h, w = x.shape

    def size(length):
        m = (math.ceil if ceil else math.floor)((length + 2 * p - k) / s) + 1
        return m - 1 if p and (m - 1) * s >= length + p else m

    oh, ow = size(h), size(w)
    y = np.zeros((n, c, oh, ow), np.float64)
    for i in range(oh):
        for j in range(ow):
            hs, ws = i * s - p, j * s - p
            he, we = min(hs + k, h + p), min(ws + k, w + p)
            area = (he - hs) * (we - ws)
            win = x[:, :, max(hs, 0) : min(he, h), max(ws, 0) : min(we, w)]
            y[:, :, i, j] = win.max((2, 3)) if method == "MAX" else win.sum((2, 3)) / area
    return y


@pytest.mark.parametrize(
    "h,w,k,s,p,method,ceil",
    [
        (7, 8, 3, 2, 1, "AVE", True),
        (5, 5, 2, 2, 1, "AVE", True),
        (5, 6, 2, 2, 1, "MAX", True),  # last-window correction
        (6, 6, 3, 1, 2, "AVE", True),
        (6, 7, 3, 1, 2, "MAX", True),  # pad beyond torch's k/2 limit
        (9, 7, 3, 3, 0, "AVE", True),
        (10, 10, 4, 3, 2, "MAX", True),
        (8, 9, 3, 2, 0, "AVE", True),
        (7, 7, 3, 2, 1, "MAX", False),
        (8, 8, 3, 2, 1, "AVE", False),  # round_mode: FLOOR
    ],
)
def test_pooling_matches_caffe_reference(h, w, k, s, p, method, ceil):
    x = np.random.default_rng(h * 31 + w + k).normal(size=(2, 3, h, w)).astype(np.float32)
    got = CaffePooling(method, (k, k), (s, s), (p, p), ceil_mode=ceil)(torch.from_numpy(x))
    np.testing.assert_allclose(got.numpy(), caffe_pool_reference(x, method, k, s, p, ceil), atol=ATOL)


def test_global_pooling():
    x = torch.randn(2, 3, 5, 7)
    torch.testing.assert_close(CaffePooling("AVE", None, (1, 1), (0, 0))(x), x.mean((2, 3), keepdim=True))
    torch.testing.assert_close(CaffePooling("MAX", None, (1, 1), (0, 0))(x), x.amax((2, 3), keepdim=True))


def test_lrn_matches_caffe_formulas(tmp_path):
    x = np.random.default_rng(2).normal(size=(1, 6, 5, 4)).astype(np.float32)
    size, alpha, beta, k = 3, 0.7, 0.75, 2.0
    sq = np.pad(x.astype(np.float64) ** 2, ((0, 0), (1, 1), (1, 1), (1, 1)))
    across = np.stack([sq[:, c : c + size, 1:-1, 1:-1].sum(1) for c in range(6)], 1)
    within = np.zeros_like(across)
    for i in range(5):
        for j in range(4):
            within[:, :, i, j] = sq[:, 1:-1, i : i + size, j : j + size].sum((2, 3))
    net = CaffeNet(
        parse_prototxt(
            'input: "x" input_shape { dim: 1 dim: 6 dim: 5 dim: 4 }\n'
            'layer { name: "n" type: "LRN" bottom: "x" top: "n" '
            f"lrn_param {{ local_size: {size} alpha: {alpha} beta: {beta} k: {k} }} }}"
        )
    )
    np.testing.assert_allclose(net(torch.from_numpy(x)).numpy(), x * (k + alpha / size * across) ** -beta, atol=ATOL)
    got = CaffeLRNWithin(size, alpha, beta)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, x * (1 + alpha / size**2 * within) ** -beta, atol=ATOL)


# ------------------------------------------------------------------------------- names, shapes
def test_dotted_clashing_and_repeated_names(tmp_path):
    text = (
        'input: "x" input_shape { dim: 1 dim: 2 dim: 4 dim: 4 }\n'
        'layer { name: "conv1.1" type: "Convolution" bottom: "x" top: "a" '
        "convolution_param { num_output: 2 kernel_size: 1 } }\n"
        'layer { name: "forward" type: "ReLU" bottom: "a" top: "b" }\n'
        'layer { name: "act" type: "Sigmoid" bottom: "b" top: "c" }\n'
        'layer { name: "act" type: "TanH" bottom: "c" top: "d" }\n'
    )
    net = CaffeNet(parse_prototxt(text))
    assert [n for n, _ in net.named_children()] == ["conv1_1", "forward_", "act", "act_2"]
    assert net.caffe_names["conv1_1"] == "conv1.1" and net.post_activation("conv1.1") == "forward_"
    assert net(torch.rand(1, 2, 4, 4)).shape == (1, 2, 4, 4)


def test_reshape_keeps_the_batch_of_a_deploy_prototxt():
    # Deploy prototxts fix the batch (dim: 64); the batch the caller passes wins.
    net = CaffeNet(
        parse_prototxt(
            'input: "x" input_shape { dim: 64 dim: 32 }\n'
            'layer { name: "r" type: "Reshape" bottom: "x" top: "r" '
            "reshape_param { shape { dim: 64 dim: 2 dim: 4 dim: 4 } } }"
        )
    )
    assert net(torch.rand(3, 32)).shape == (3, 2, 4, 4)


def test_two_inputs_by_dict():
    net = CaffeNet(
        parse_prototxt(
            'input: "a" input: "b" input_shape { dim: 1 dim: 2 }\n'
            'layer { name: "s" type: "Eltwise" bottom: "a" bottom: "b" top: "s" }'
        )
    )
    a, b = torch.rand(1, 2), torch.rand(1, 2)
    torch.testing.assert_close(net({"a": a, "b": b}), a + b)
    with pytest.raises(InputError, match="input blob 'b' was not given"):
        net(a)


# ------------------------------------------------------------------------------- bad input
def test_unsupported_layer_names_layer_and_type(tmp_path):
    text = MINI + 'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }\n'
    path = _text(tmp_path, "deploy.prototxt", text)  # 'label' is no blob of the net: the type is reported first
    with pytest.raises(
        InputError,
        match=r"unsupported Caffe layer 'loss' \(type SoftmaxWithLoss\) in .*deploy.prototxt.*supported: .*Convolution",
    ) as e:
        CaffeNet(path)
    assert "\n" not in str(e.value)
    train_val = (
        'layer { name: "data" type: "Data" top: "data" top: "label" data_param { source: "lmdb" batch_size: 8 } }'
    )
    with pytest.raises(InputError, match=r"'data' \(type Data\).*use the deploy prototxt"):
        CaffeNet(parse_prototxt(train_val))


def test_caffemodel_missing_weights_for_a_layer(mini, tmp_path):
    w = {k: v for k, v in mini[2].items() if k != "inc/3x3"}
    model = write_caffemodel(tmp_path / "partial.caffemodel", w)
    with pytest.raises(
        InputError,
        match=r"layer 'inc/3x3' \(Convolution\) in .*deploy.prototxt has no weights in '.*partial.caffemodel'",
    ):
        CaffeNet(mini[0], model)


def test_caffemodel_weights_of_the_wrong_shape(mini, tmp_path):
    w = dict(mini[2], conv1=[torch.zeros(8, 3, 5, 5), torch.zeros(8)])
    with pytest.raises(
        InputError, match=r"layer 'conv1'.*weight blob has shape \(8, 3, 5, 5\).*expected \(8, 3, 3, 3\)"
    ):
        CaffeNet(mini[0], write_caffemodel(tmp_path / "bad.caffemodel", w))
    w = dict(mini[2], conv1=[torch.zeros(8, 3, 3, 3)])
    with pytest.raises(InputError, match=r"layer 'conv1'.*1 weight blobs in the caffemodel, expected 2"):
        CaffeNet(mini[0], write_caffemodel(tmp_path / "bad2.caffemodel", w))


def test_bottom_that_nothing_writes(tmp_path):
    text = 'input: "data"\nlayer { name: "relu" type: "ReLU" bottom: "conv9" top: "r" }'
    with pytest.raises(InputError, match="layer 'relu' .* reads blob 'conv9' that no earlier layer writes"):
        CaffeNet(_text(tmp_path, "d.prototxt", text))


def test_bad_geometry_names_the_layer(tmp_path):
    text = (
        'input: "data" input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'
        'layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
        "convolution_param { num_output: 4 kernel_size: 3 group: 2 } }"
    )
    with pytest.raises(InputError, match="layer 'c' .*3 input channels do not split into 2 groups"):
        CaffeNet(_text(tmp_path, "g.prototxt", text))
    text = (
        'input: "data" input_shape { dim: 1 dim: 3 dim: 4 dim: 4 }\n'
        'layer { name: "big" type: "Convolution" bottom: "data" top: "c" '
        "convolution_param { num_output: 4 kernel_size: 9 } }"
    )
    with pytest.raises(InputError, match=r"layer 'big' .*cannot take inputs of shape \(1, 3, 4, 4\)"):
        CaffeNet(_text(tmp_path, "k.prototxt", text))
    with pytest.raises(InputError, match="cannot tell its input channels"):
        CaffeNet(
            parse_prototxt(
                'input: "x"\nlayer { name: "c" type: "Convolution" bottom: "x" top: "c" '
                "convolution_param { num_output: 2 kernel_size: 1 } }"
            )
        )


def test_state_dict_that_does_not_fit(mini):
    state = convert_caffe(mini[0], mini[1]).state_dict()
    state.pop("fc.bias")
    with pytest.raises(InputError, match="missing 'fc.bias'"):
        CaffeNet(mini[0], state)
