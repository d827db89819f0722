"""Reading Caffe files without Caffe: prototxt text (new and V1 syntax), caffemodel binaries, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from cnnvis.errors import InputError
from cnnvis.models.caffe import net_layers, proto, read_caffemodel, read_prototxt
from cnnvis.models.caffe.reader import blob_array, net_inputs

# Every layer type the converter runs, with the parameters it reads, plus things it must skip:
# a Data layer's transform_param, weight fillers, engine, and a TRAIN-only layer.
NEW_FORMAT = """
name: "zoo"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } } }
layer { name: "train_data" type: "Data" top: "data" top: "label" include { phase: TRAIN }
        transform_param { mirror: true crop_size: 227 mean_file: "m.binaryproto" }
        data_param { source: "x" batch_size: 2 } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
        convolution_param { num_output: 8 kernel_h: 3 kernel_w: 1 pad_h: 1 pad_w: 0 stride_h: 2 stride_w: 1 group: 1
                            dilation: 2 bias_term: false engine: CUDNN weight_filler { type: "msra" } } }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
        convolution_param { num_output: 8 kernel_size: 3 kernel_size: 5 pad: 1 pad: 2 stride: 2 group: 2 } }
layer { name: "deconv" type: "Deconvolution" bottom: "conv2" top: "deconv"
        convolution_param { num_output: 4 kernel_size: 4 stride: 2 pad: 1 } }
layer { name: "relu" type: "ReLU" bottom: "deconv" top: "deconv" relu_param { negative_slope: 0.3 engine: CAFFE } }
layer { name: "prelu" type: "PReLU" bottom: "deconv" top: "prelu"
        prelu_param { channel_shared: true filler { value: 0.1 } } }
layer { name: "elu" type: "ELU" bottom: "prelu" top: "elu" elu_param { alpha: 0.5 } }
layer { name: "sig" type: "Sigmoid" bottom: "elu" top: "sig" }
layer { name: "tanh" type: "TanH" bottom: "sig" top: "tanh" }
layer { name: "pool" type: "Pooling" bottom: "tanh" top: "pool"
        pooling_param { pool: AVE kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0
                        round_mode: FLOOR } }
layer { name: "gpool" type: "Pooling" bottom: "pool" top: "gpool" pooling_param { pool: MAX global_pooling: true } }
layer { name: "lrn" type: "LRN" bottom: "tanh" top: "lrn"
        lrn_param { local_size: 3 alpha: 0.1 beta: 0.5 k: 2 norm_region: WITHIN_CHANNEL } }
layer { name: "drop" type: "Dropout" bottom: "lrn" top: "lrn" dropout_param { dropout_ratio: 0.3 } }
layer { name: "bn" type: "BatchNorm" bottom: "lrn" top: "lrn" batch_norm_param { use_global_stats: true eps: 0.001 } }
layer { name: "scale" type: "Scale" bottom: "lrn" top: "lrn" scale_param { axis: 1 num_axes: 1 bias_term: true } }
layer { name: "bias" type: "Bias" bottom: "lrn" top: "biased" bias_param { axis: 1 num_axes: 1 } }
layer { name: "power" type: "Power" bottom: "biased" top: "power" power_param { power: 2 scale: 0.5 shift: 1 } }
layer { name: "split" type: "Split" bottom: "power" top: "a" top: "b" }
layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "sum"
        eltwise_param { operation: SUM coeff: 1 coeff: -0.5 } }
layer { name: "cat" type: "Concat" bottom: "sum" bottom: "a" top: "cat" concat_param { axis: 1 } }
layer { name: "slice" type: "Slice" bottom: "cat" top: "s1" top: "s2" slice_param { axis: 1 slice_point: 3 } }
layer { name: "crop" type: "Crop" bottom: "s1" bottom: "pool" top: "crop" crop_param { axis: 2 offset: 1 offset: 0 } }
layer { name: "flat" type: "Flatten" bottom: "crop" top: "flat" flatten_param { axis: 1 end_axis: -1 } }
layer { name: "reshape" type: "Reshape" bottom: "flat" top: "reshaped"
        reshape_param { shape { dim: 0 dim: -1 } axis: 0 num_axes: -1 } }
layer { name: "fc" type: "InnerProduct" bottom: "reshaped" top: "fc"
        inner_product_param { num_output: 5 axis: 1 transpose: true } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" softmax_param { axis: 1 } }
layer { name: "silence" type: "Silence" bottom: "s2" }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" include { phase: TRAIN }
        loss_param { ignore_label: 3 } }
"""

# The same kind of net in the 2014 V1 syntax (BVLC AlexNet's era): enum types, blobs_lr, input_dim.
V1_FORMAT = """
name: "CaffeNet"
input: "data"
input_dim: 10
input_dim: 3
input_dim: 27
input_dim: 27
layers { name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"
         blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
         convolution_param { num_output: 6 kernel_size: 5 stride: 2 group: 1
                             weight_filler { type: "gaussian" std: 0.01 } } }
layers { name: "relu1" type: RELU bottom: "conv1" top: "conv1" }
layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layers { name: "norm1" type: LRN bottom: "pool1" top: "norm1" lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 } }
layers { name: "fc6" type: INNER_PRODUCT bottom: "norm1" top: "fc6" inner_product_param { num_output: 7 } }
layers { name: "drop6" type: DROPOUT bottom: "fc6" top: "fc6" dropout_param { dropout_ratio: 0.5 } }
layers { name: "cat" type: CONCAT bottom: "fc6" bottom: "fc6" top: "cat" concat_param { concat_dim: 1 } }
layers { name: "prob" type: SOFTMAX bottom: "cat" top: "prob" }
layers { name: "acc" type: ACCURACY bottom: "prob" top: "acc" include: { phase: TRAIN } }
"""


def _write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _blob(arr: np.ndarray, legacy: bool = False):
    b = proto.BlobProto()
    if legacy:  # 2014 files: a 4-D num/channels/height/width header, no BlobShape
        dims = (1,) * (4 - arr.ndim) + arr.shape
        b.num, b.channels, b.height, b.width = dims
    else:
        b.shape.dim.extend(arr.shape)
    b.data.extend(arr.astype(np.float32).ravel().tolist())
    return b


def _caffemodel(tmp_path, layers: dict[str, list[np.ndarray]], v1: bool = False, name: str = "w.caffemodel") -> str:
    net = proto.NetParameter(name="trained")
    for lname, arrays in layers.items():
        layer = net.layers.add(name=lname, type=4) if v1 else net.layer.add(name=lname, type="Convolution")
        layer.blobs.extend(_blob(a, legacy=v1) for a in arrays)
    path = tmp_path / name
    path.write_bytes(net.SerializeToString())
    return str(path)


def test_new_format_prototxt_parses_every_layer_type(tmp_path):
    net = read_prototxt(_write(tmp_path, "zoo.prototxt", NEW_FORMAT))
    layers = {layer.name: layer for layer in net_layers(net)}
    assert [la.type for la in net_layers(net)][:3] == ["Input", "Data", "Convolution"]
    assert not layers["train_data"].in_test_phase and not layers["loss"].in_test_phase
    assert layers["conv1"].in_test_phase
    c1 = layers["conv1"].param.convolution_param
    assert (c1.kernel_h, c1.kernel_w, c1.pad_h, c1.pad_w, c1.stride_h, c1.stride_w) == (3, 1, 1, 0, 2, 1)
    assert list(c1.dilation) == [2] and not c1.bias_term
    c2 = layers["conv2"].param.convolution_param
    assert list(c2.kernel_size) == [3, 5] and list(c2.pad) == [1, 2] and c2.group == 2 and c2.bias_term
    assert layers["relu"].param.relu_param.negative_slope == pytest.approx(0.3)
    assert layers["relu"].tops == layers["relu"].bottoms == ["deconv"]
    assert layers["prelu"].param.prelu_param.channel_shared
    assert layers["elu"].param.elu_param.alpha == pytest.approx(0.5)
    pp = layers["pool"].param.pooling_param
    assert (pp.pool, pp.kernel_h, pp.kernel_w, pp.stride_h, pp.pad_h, pp.round_mode) == (1, 3, 2, 2, 1, 1)
    assert layers["gpool"].param.pooling_param.global_pooling
    lrn = layers["lrn"].param.lrn_param
    assert (lrn.local_size, lrn.norm_region) == (3, 1) and lrn.k == pytest.approx(2)
    assert layers["bn"].param.batch_norm_param.eps == pytest.approx(1e-3)
    assert layers["scale"].param.scale_param.bias_term
    assert layers["power"].param.power_param.power == 2
    assert layers["split"].tops == ["a", "b"]
    assert list(layers["sum"].param.eltwise_param.coeff) == [1, -0.5]
    assert list(layers["slice"].param.slice_param.slice_point) == [3]
    assert list(layers["crop"].param.crop_param.offset) == [1, 0]
    assert list(layers["reshape"].param.reshape_param.shape.dim) == [0, -1]
    assert layers["fc"].param.inner_product_param.transpose
    assert layers["silence"].type == "Silence" and layers["silence"].tops == []
    assert list(layers["data"].param.input_param.shape[0].dim) == [1, 3, 8, 8]


def test_defaults_follow_caffe_proto(tmp_path):
    text = (
        'layer { name: "c" type: "Convolution" convolution_param { num_output: 2 kernel_size: 3 } }\n'
        'layer { name: "p" type: "Pooling" pooling_param { kernel_size: 2 } }\n'
        'layer { name: "n" type: "LRN" }\nlayer { name: "b" type: "BatchNorm" }'
    )
    layers = {la.name: la.param for la in net_layers(read_prototxt(_write(tmp_path, "d.prototxt", text)))}
    assert layers["c"].convolution_param.bias_term and layers["c"].convolution_param.group == 1
    assert (
        layers["p"].pooling_param.pool == 0
        and layers["p"].pooling_param.stride == 1
        and layers["p"].pooling_param.round_mode == 0
    )
    assert layers["n"].lrn_param.local_size == 5 and layers["n"].lrn_param.beta == pytest.approx(0.75)
    assert layers["b"].batch_norm_param.eps == pytest.approx(1e-5)


def test_v1_prototxt_becomes_new_types(tmp_path):
    net = read_prototxt(_write(tmp_path, "v1.prototxt", V1_FORMAT))
    assert net_inputs(net) == [("data", (10, 3, 27, 27))]
    layers = net_layers(net)
    assert [la.type for la in layers] == [
        "Convolution",
        "ReLU",
        "Pooling",
        "LRN",
        "InnerProduct",
        "Dropout",
        "Concat",
        "Softmax",
        "Accuracy",
    ]
    assert layers[0].param.convolution_param.num_output == 6 and layers[0].param.convolution_param.stride == [2]
    assert layers[2].param.pooling_param.kernel_size == 3
    assert layers[4].param.inner_product_param.num_output == 7
    assert layers[6].param.concat_param.concat_dim == 1
    assert not layers[-1].in_test_phase


def test_input_shape_forms(tmp_path):
    text = 'input: "a" input: "b" input_shape { dim: 1 dim: 2 } input_shape { dim: 3 dim: 4 dim: 5 }'
    assert net_inputs(read_prototxt(_write(tmp_path, "i.prototxt", text))) == [("a", (1, 2)), ("b", (3, 4, 5))]
    assert net_inputs(read_prototxt(_write(tmp_path, "j.prototxt", 'input: "x"'))) == [("x", None)]


def test_caffemodel_new_format_blobs(tmp_path):
    w = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)
    b = np.array([0.5, -1], dtype=np.float32)
    net = read_caffemodel(_caffemodel(tmp_path, {"conv1": [w, b], "fc": [np.ones((4, 6), np.float32)]}))
    layers = net_layers(net)
    assert [la.name for la in layers] == ["conv1", "fc"]
    np.testing.assert_array_equal(layers[0].blobs[0], w)
    np.testing.assert_array_equal(layers[0].blobs[1], b)
    assert layers[1].blobs[0].shape == (4, 6) and layers[1].blobs[0].dtype == np.float32


def test_caffemodel_v1_legacy_shapes(tmp_path):
    w = np.random.default_rng(0).normal(size=(2, 3, 2, 2)).astype(np.float32)
    b = np.array([1.0, 2.0], dtype=np.float32)
    layers = net_layers(read_caffemodel(_caffemodel(tmp_path, {"conv1": [w, b]}, v1=True)))
    assert layers[0].type == "Convolution"
    np.testing.assert_array_equal(layers[0].blobs[0], w)
    assert layers[0].blobs[1].shape == (1, 1, 1, 2)  # legacy 4-D; the converter reshapes by count


def test_double_data_blobs():
    blob = proto.BlobProto()
    blob.shape.dim.extend([3])
    blob.double_data.extend([1.5, 2.5, 3.5])
    np.testing.assert_allclose(blob_array(blob), [1.5, 2.5, 3.5])


def test_field_numbers_match_bvlc_caffe_proto():
    # Wire tags of the fields that carry weights: (field << 3) | 2 as varints.
    net = proto.NetParameter()
    net.layer.add(name="x").blobs.add().data.append(1.0)
    raw = net.SerializeToString()
    assert raw[:2] == bytes([0xA2, 0x06])  # NetParameter.layer = 100
    v1 = proto.NetParameter()
    v1.layers.add(name="x").blobs.add()
    assert v1.SerializeToString()[0] == 0x12  # NetParameter.layers = 2
    number = {
        m: {f.name: f.number for f in proto.message_class(m).DESCRIPTOR.fields}
        for m in ("LayerParameter", "V1LayerParameter", "BlobProto", "ConvolutionParameter", "PoolingParameter")
    }
    assert number["LayerParameter"]["blobs"] == 7 and number["V1LayerParameter"]["blobs"] == 6
    assert (number["LayerParameter"]["convolution_param"], number["V1LayerParameter"]["convolution_param"]) == (106, 10)
    assert (number["LayerParameter"]["pooling_param"], number["V1LayerParameter"]["pooling_param"]) == (121, 19)
    assert (number["LayerParameter"]["batch_norm_param"], number["LayerParameter"]["scale_param"]) == (139, 142)
    assert (number["BlobProto"]["shape"], number["BlobProto"]["data"], number["BlobProto"]["double_data"]) == (7, 5, 8)
    assert (number["ConvolutionParameter"]["group"], number["ConvolutionParameter"]["dilation"]) == (5, 18)
    assert (number["ConvolutionParameter"]["stride"], number["PoolingParameter"]["stride"]) == (6, 3)


# ------------------------------------------------------------------------------- bad files
def test_missing_files_name_the_path(tmp_path):
    with pytest.raises(InputError, match=r"prototxt file not found: '.*nope.prototxt'"):
        read_prototxt(tmp_path / "nope.prototxt")
    with pytest.raises(InputError, match=r"caffemodel file not found: '.*nope.caffemodel'"):
        read_caffemodel(tmp_path / "nope.caffemodel")


def test_truncated_caffemodel(tmp_path):
    w = np.random.default_rng(1).normal(size=(16, 3, 5, 5)).astype(np.float32)
    path = _caffemodel(tmp_path, {"conv1": [w, np.zeros(16, np.float32)]})
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cannot decode caffemodel '.*w.caffemodel'.*truncated") as e:
        read_caffemodel(path)
    assert "\n" not in str(e.value)


def test_prototxt_given_as_caffemodel_and_empty_caffemodel(tmp_path):
    with pytest.raises(InputError, match="truncated or not a Caffe binary model|holds no layers"):
        read_caffemodel(_write(tmp_path, "deploy.prototxt", V1_FORMAT))
    empty = tmp_path / "empty.caffemodel"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="holds no layers"):
        read_caffemodel(empty)


def test_prototxt_syntax_error_names_the_line(tmp_path):
    text = 'name: "x"\nlayer {\n  name: "conv1"\n  type: "Convolution"\n  convolution_param { num_output: }\n}\n'
    with pytest.raises(InputError, match=r"cannot parse prototxt '.*bad.prototxt' at line 5") as e:
        read_prototxt(_write(tmp_path, "bad.prototxt", text))
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="line 2"):
        read_prototxt(_write(tmp_path, "open.prototxt", 'name: "x"\nlayer { name: "a"'))


def test_binary_given_as_prototxt(tmp_path):
    path = _caffemodel(tmp_path, {"conv1": [np.full((4, 4), -1.0, np.float32)]}, name="model.caffemodel")
    with pytest.raises(InputError, match="not a text prototxt"):
        read_prototxt(path)


def test_corrupt_blob_count(tmp_path):
    net = proto.NetParameter()
    blob = net.layer.add(name="c").blobs.add()
    blob.shape.dim.extend([2, 3])
    blob.data.extend([1.0] * 5)
    with pytest.raises(InputError, match="blob 0 of layer 'c'.*5 values but shape"):
        net_layers(net)
