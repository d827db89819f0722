"""The seeds' classifiers (BVLC AlexNet, GoogLeNet, VGG19): their deploy architectures, written
here layer for layer in Caffe's syntax, build with Caffe's names and Caffe's blob shapes.

The published caffemodels cannot be downloaded here, so the weights are random and the nets
are built on the meta device (shapes only, no memory): what this checks is that the reader and
the layer builders take these exact prototxts, and that Caffe's ceil-mode pooling gives the
canonical sizes (GoogLeNet's 14x14 inception_4c, AlexNet's 6x6 pool5)."""

from __future__ import annotations

import pytest
import torch

from cnnvis.models.caffe import CaffeNet, parse_prototxt
from cnnvis.models.capture import resolve_layer

HEAD = 'name: "{name}"\ninput: "data"\ninput_shape {{ dim: 10 dim: 3 dim: {side} dim: {side} }}\n'


def conv(name, bottom, out, k, s=1, p=0, g=1, top=None):
    top = top or name
    return (
        f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{top}" '
        f"convolution_param {{ num_output: {out} kernel_size: {k} stride: {s} pad: {p} group: {g} }} }}\n"
    )


def relu(name, blob):
    return f'layer {{ name: "{name}" type: "ReLU" bottom: "{blob}" top: "{blob}" }}\n'


def pool(name, bottom, k, s, kind="MAX", p=0):
    return (
        f'layer {{ name: "{name}" type: "Pooling" bottom: "{bottom}" top: "{name}" '
        f"pooling_param {{ pool: {kind} kernel_size: {k} stride: {s} pad: {p} }} }}\n"
    )


def lrn(name, bottom, size=5):
    return (
        f'layer {{ name: "{name}" type: "LRN" bottom: "{bottom}" top: "{name}" '
        f"lrn_param {{ local_size: {size} alpha: 0.0001 beta: 0.75 }} }}\n"
    )


def fc(name, bottom, out):
    return (
        f'layer {{ name: "{name}" type: "InnerProduct" bottom: "{bottom}" top: "{name}" '
        f"inner_product_param {{ num_output: {out} }} }}\n"
    )


def drop(name, blob):
    return (
        f'layer {{ name: "{name}" type: "Dropout" bottom: "{blob}" top: "{blob}" '
        "dropout_param { dropout_ratio: 0.5 } }\n"
    )


def softmax(bottom):
    return f'layer {{ name: "prob" type: "Softmax" bottom: "{bottom}" top: "prob" }}\n'


def alexnet() -> str:
    t = HEAD.format(name="AlexNet", side=227)
    t += (
        conv("conv1", "data", 96, 11, s=4)
        + relu("relu1", "conv1")
        + lrn("norm1", "conv1")
        + pool("pool1", "norm1", 3, 2)
    )
    t += (
        conv("conv2", "pool1", 256, 5, p=2, g=2)
        + relu("relu2", "conv2")
        + lrn("norm2", "conv2")
        + pool("pool2", "norm2", 3, 2)
    )
    t += conv("conv3", "pool2", 384, 3, p=1) + relu("relu3", "conv3")
    t += conv("conv4", "conv3", 384, 3, p=1, g=2) + relu("relu4", "conv4")
    t += conv("conv5", "conv4", 256, 3, p=1, g=2) + relu("relu5", "conv5") + pool("pool5", "conv5", 3, 2)
    t += fc("fc6", "pool5", 4096) + relu("relu6", "fc6") + drop("drop6", "fc6")
    t += fc("fc7", "fc6", 4096) + relu("relu7", "fc7") + drop("drop7", "fc7")
    return t + fc("fc8", "fc7", 1000) + softmax("fc8")


def vgg19() -> str:
    t, bottom = HEAD.format(name="VGG_ILSVRC_19_layers", side=224), "data"
    for stage, (n, width) in enumerate([(2, 64), (2, 128), (4, 256), (4, 512), (4, 512)], start=1):
        for i in range(1, n + 1):
            name = f"conv{stage}_{i}"
            t += conv(name, bottom, width, 3, p=1) + relu(f"relu{stage}_{i}", name)
            bottom = name
        t += pool(f"pool{stage}", bottom, 2, 2)
        bottom = f"pool{stage}"
    t += fc("fc6", bottom, 4096) + relu("relu6", "fc6") + drop("drop6", "fc6")
    t += fc("fc7", "fc6", 4096) + relu("relu7", "fc7") + drop("drop7", "fc7")
    return t + fc("fc8", "fc7", 1000) + softmax("fc8")


# GoogLeNet (Szegedy et al. 2015, BVLC's bvlc_googlenet): 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def inception(name, bottom, c1, r3, c3, r5, c5, pp) -> str:
    p = f"inception_{name}"
    t = conv(f"{p}/1x1", bottom, c1, 1) + relu(f"{p}/relu_1x1", f"{p}/1x1")
    t += conv(f"{p}/3x3_reduce", bottom, r3, 1) + relu(f"{p}/relu_3x3_reduce", f"{p}/3x3_reduce")
    t += conv(f"{p}/3x3", f"{p}/3x3_reduce", c3, 3, p=1) + relu(f"{p}/relu_3x3", f"{p}/3x3")
    t += conv(f"{p}/5x5_reduce", bottom, r5, 1) + relu(f"{p}/relu_5x5_reduce", f"{p}/5x5_reduce")
    t += conv(f"{p}/5x5", f"{p}/5x5_reduce", c5, 5, p=2) + relu(f"{p}/relu_5x5", f"{p}/5x5")
    t += pool(f"{p}/pool", bottom, 3, 1, p=1)
    t += conv(f"{p}/pool_proj", f"{p}/pool", pp, 1) + relu(f"{p}/relu_pool_proj", f"{p}/pool_proj")
    tops = " ".join(f'bottom: "{p}/{b}"' for b in ("1x1", "3x3", "5x5", "pool_proj"))
    return t + f'layer {{ name: "{p}/output" type: "Concat" {tops} top: "{p}/output" }}\n'


def googlenet() -> str:
    t = HEAD.format(name="GoogleNet", side=224)
    t += (
        conv("conv1/7x7_s2", "data", 64, 7, s=2, p=3)
        + relu("conv1/relu_7x7", "conv1/7x7_s2")
        + pool("pool1/3x3_s2", "conv1/7x7_s2", 3, 2)
    )
    t += lrn("pool1/norm1", "pool1/3x3_s2")
    t += conv("conv2/3x3_reduce", "pool1/norm1", 64, 1) + relu("conv2/relu_3x3_reduce", "conv2/3x3_reduce")
    t += (
        conv("conv2/3x3", "conv2/3x3_reduce", 192, 3, p=1)
        + relu("conv2/relu_3x3", "conv2/3x3")
        + lrn("conv2/norm2", "conv2/3x3")
    )
    t += pool("pool2/3x3_s2", "conv2/norm2", 3, 2)
    bottom = "pool2/3x3_s2"
    for name, spec in INCEPTION.items():
        t += inception(name, bottom, *spec)
        bottom = f"inception_{name}/output"
        if name in ("3b", "4e"):
            stage = "3" if name == "3b" else "4"
            t += pool(f"pool{stage}/3x3_s2", bottom, 3, 2)
            bottom = f"pool{stage}/3x3_s2"
    t += pool("pool5/7x7_s1", bottom, 7, 1, kind="AVE") + drop("pool5/drop_7x7_s1", "pool5/7x7_s1")
    return t + fc("loss3/classifier", "pool5/7x7_s1", 1000) + softmax("loss3/classifier")


@pytest.mark.parametrize(
    "make,shapes",
    [
        (
            alexnet,
            {
                "conv1": (96, 55, 55),
                "pool1": (96, 27, 27),
                "conv5": (256, 13, 13),
                "pool5": (256, 6, 6),
                "fc6": (4096,),
                "fc8": (1000,),
            },
        ),
        (
            vgg19,
            {
                "conv1_1": (64, 224, 224),
                "conv3_4": (256, 56, 56),
                "conv5_4": (512, 14, 14),
                "pool5": (512, 7, 7),
                "fc8": (1000,),
            },
        ),
        (
            googlenet,
            {
                "pool1/3x3_s2": (64, 56, 56),
                "pool2/3x3_s2": (192, 28, 28),
                "inception_3b/output": (480, 28, 28),
                "inception_4c/output": (512, 14, 14),
                "inception_4e/output": (832, 14, 14),
                "inception_5b/output": (1024, 7, 7),
                "pool5/7x7_s1": (1024, 1, 1),
                "loss3/classifier": (1000,),
            },
        ),
    ],
)
def test_seed_classifier_builds_with_caffe_names_and_shapes(make, shapes):
    with torch.device("meta"):
        net = CaffeNet(parse_prototxt(make()), weights=None)
    for blob, shape in shapes.items():
        assert net.blob_shapes[blob] == (10, *shape), blob
    names = dict(net.named_children())
    first = next(iter(shapes))
    assert first in names  # layers are submodules under their Caffe names, hookable
    # pre-ReLU features are reachable: the convolution itself, its ReLU the post side
    conv_name = "conv5" if "conv5" in names else "conv5_4" if "conv5_4" in names else "inception_4c/1x1"
    post = resolve_layer(net, conv_name, "post")
    assert post != conv_name and net.layer_types[post] == "ReLU"
    assert resolve_layer(net, post, "pre") == conv_name
