"""``cnnvis convert-caffe`` and Caffe nets as ``--model``: files the tests write in Caffe's format."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, invoke, norm1_generator_prototxt, write_caffemodel_of

from cnnvis.models.caffe import CaffeNet
from cnnvis.models.registry import load_model
from cnnvis.priors.generators.files import load_generator

DEPLOY = """name: "MiniAlex"
input: "data"
input_shape { dim: 1 dim: 3 dim: 40 dim: 40 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 8 kernel_size: 5 stride: 2 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "norm1" type: "LRN" bottom: "conv1" top: "norm1" lrn_param { local_size: 3 alpha: 0.0001 beta: 0.75 } }
layer { name: "pool1" type: "Pooling" bottom: "norm1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
        convolution_param { num_output: 12 kernel_size: 3 pad: 1 group: 2 } }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "fc8" type: "InnerProduct" bottom: "conv2" top: "fc8" inner_product_param { num_output: 10 } }
layer { name: "prob" type: "Softmax" bottom: "fc8" top: "prob" }
"""


@pytest.fixture
def caffe_files(tmp_path):
    deploy = tmp_path / "deploy.prototxt"
    deploy.write_text(DEPLOY)
    torch.manual_seed(0)
    ref = CaffeNet(str(deploy), weights=None)
    model = write_caffemodel_of(tmp_path / "mini.caffemodel", ref)
    return str(deploy), model, ref


def test_convert_classifier_and_use_it_as_a_model(tmp_path, caffe_files):
    deploy, caffemodel, ref = caffe_files
    out = tmp_path / "mini.pt"
    res = invoke(["convert-caffe", deploy, caffemodel, "--out", out, "--mean", "100,110,120"])
    assert res.exit_code == 0 and "use it with --model" in res.output, res.output
    m = load_model(str(out))
    assert m.bgr and m.input_size == 40 and m.weights_sha256
    # RGB in [0, 1] reaches the net as Caffe's input: BGR, 0..255, minus the (BGR) mean
    x = torch.rand(1, 3, 40, 40)
    caffe_in = (x.flip(1) * 255) - torch.tensor([100.0, 110.0, 120.0]).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(m.module(m.normalize(x)), ref(caffe_in), atol=1e-5, rtol=1e-5)
    # the prototxt + caffemodel pair loads the same net, with the BVLC mean by default
    direct = load_model(deploy, weights=caffemodel)
    assert direct.mean == pytest.approx((123 / 255, 117 / 255, 104 / 255))
    with torch.no_grad():
        torch.testing.assert_close(direct.module(x), m.module(x))
    # layers keep Caffe's names; pre-ReLU conv1 and post-ReLU relu1 are both hook points
    res = invoke(["layers", out, "--size", 40])
    assert res.exit_code == 0 and "conv1" in res.output and "relu1" in res.output and "fc8" in res.output


def test_caffe_model_on_the_commands(tmp_path, caffe_files):
    deploy, caffemodel, _ = caffe_files
    out = tmp_path / "p.png"
    res = invoke(
        [
            "prefer",
            "--model",
            deploy,
            "--weights",
            caffemodel,
            "--layer",
            "fc8",
            "--channel",
            3,
            "--steps",
            3,
            "-q",
            "--out",
            out,
        ]
    )
    assert res.exit_code == 0, (res.output, res.exception)
    assert iio.imread(out).shape == (40, 40, 3)
    src = tmp_path / "src.png"
    iio.imwrite(src, (np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8))
    res = invoke(
        [
            "invert",
            src,
            "--model",
            deploy,
            "--weights",
            caffemodel,
            "--layer",
            "conv2",
            "--activation",
            "post",
            "--steps",
            3,
            "-q",
            "--out",
            tmp_path / "i.png",
        ]
    )
    assert res.exit_code == 0, (res.output, res.exception)


def test_caffe_bad_input(tmp_path, caffe_files):
    deploy, caffemodel, _ = caffe_files
    cut = tmp_path / "cut.caffemodel"
    cut.write_bytes(open(caffemodel, "rb").read()[:300])
    assert_one_line_error(invoke(["convert-caffe", deploy, cut, "--out", tmp_path / "x.pt"]), "cut.caffemodel")
    half = tmp_path / "half.prototxt"
    half.write_text(DEPLOY[: len(DEPLOY) // 2])  # cut inside a layer { ... }
    assert_one_line_error(invoke(["convert-caffe", half, caffemodel, "--out", tmp_path / "x.pt"]), "half.prototxt")
    bad = tmp_path / "bad.prototxt"
    bad.write_text(DEPLOY.replace('type: "LRN"', 'type: "SpatialWarp"'))
    assert_one_line_error(
        invoke(["convert-caffe", bad, caffemodel, "--out", tmp_path / "x.pt"]), "'norm1'", "SpatialWarp"
    )
    assert_one_line_error(
        invoke(["convert-caffe", deploy, tmp_path / "none.caffemodel", "--out", tmp_path / "x.pt"]),
        "caffemodel file not found",
        "none.caffemodel",
    )
    assert_one_line_error(
        invoke(["convert-caffe", deploy, caffemodel, "--out", tmp_path / "x.pt", "--mean", "1,2"]), "--mean '1,2'"
    )
    assert_one_line_error(
        invoke(["prefer", "--model", deploy, "--layer", "fc8", "--channel", 1, "-q", "--out", tmp_path / "p.png"]),
        "needs its weights",
    )
    assert_one_line_error(
        invoke(
            [
                "prefer",
                "--model",
                deploy,
                "--weights",
                caffemodel,
                "--layer",
                "fc8",
                "--channel",
                10,
                "-q",
                "--out",
                tmp_path / "p.png",
            ]
        ),
        "channel 10",
    )


def test_convert_deepsim_generator_and_use_it_as_a_prior(tmp_path, caffe_files):
    deploy, caffemodel, _ = caffe_files
    proto_path = tmp_path / "norm1" / "generator.prototxt"
    proto_path.parent.mkdir()
    proto_path.write_text(norm1_generator_prototxt())
    torch.manual_seed(1)
    gen_caffe = write_caffemodel_of(proto_path.parent / "generator.caffemodel", CaffeNet(str(proto_path), weights=None))
    bound = tmp_path / "act_range.txt"
    bound.write_text("\n".join(["30"] * 96))
    out = tmp_path / "norm1.pt"
    res = invoke(["convert-caffe", proto_path, gen_caffe, "--generator", "--latent-bound", bound, "--out", out])
    assert res.exit_code == 0 and "deepsim-norm1" in res.output, res.output
    gf = load_generator(str(out))
    assert (
        gf.generator.arch == "deepsim-norm1"
        and gf.layer == "norm1"
        and torch.equal(gf.latent_upper, torch.full((96,), 30.0))
    )
    short = tmp_path / "short.txt"
    short.write_text("1 2")
    assert_one_line_error(
        invoke(["convert-caffe", proto_path, gen_caffe, "--generator", "--latent-bound", short, "--out", out]),
        "has 2 values",
        "96 channels",
    )
    assert_one_line_error(
        invoke(["convert-caffe", deploy, caffemodel, "--generator", "--out", out]), "matches no DeePSiM generator"
    )
    # a converted DeePSiM generator drives a Caffe classifier through --prior dgn
    res = invoke(
        [
            "prefer",
            "--model",
            deploy,
            "--weights",
            caffemodel,
            "--layer",
            "fc8",
            "--channel",
            2,
            "--prior",
            "dgn",
            "--generator",
            out,
            "--latent-init",
            "noise",
            "--steps",
            2,
            "-q",
            "--out",
            tmp_path / "dgn.png",
        ]
    )
    assert res.exit_code == 0, (res.output, res.exception)
    assert iio.imread(tmp_path / "dgn.png").shape == (40, 40, 3)


def test_every_option_has_its_declared_default():
    from cnnvis.cli.commands import main
    from cnnvis.recipes.caffe import GENERATOR_AUTO, ConvertCaffeOptions

    declared = {s.name: s for s in ConvertCaffeOptions.settings()}
    params = {p.name: p for p in main.commands["convert-caffe"].params if p.name != "preset"}
    names = ["prototxt", "caffemodel", "out", "generator", "mean", "input_size", "latent_bound", "quiet"]
    assert list(params) == list(declared) == names
    for name, p in params.items():
        s = declared[name]
        assert p.default == s.default, name
        if s.argument:
            assert p.required, name
        else:
            assert p.opts[0] == s.flag and p.help == s.help, name
    assert params["out"].opts == ["--out", "-o"] and params["quiet"].opts == ["--quiet", "-q"]
    # a bare --generator finds the generator the prototxt matches
    assert params["generator"].flag_value == GENERATOR_AUTO and not params["generator"].is_flag
    assert (params["input_size"].type.min, params["input_size"].type.max) == (1, None)


def test_convert_missing_out_is_one_line(tmp_path, caffe_files):
    deploy, caffemodel, _ = caffe_files
    assert_one_line_error(invoke(["convert-caffe", deploy, caffemodel]), "convert-caffe needs --out", ".pt")
    assert_one_line_error(
        invoke(["convert-caffe", deploy, caffemodel, "--out", tmp_path / "x.pt", "--latent-bound", "b.txt"]),
        "--latent-bound",
        "add --generator",
    )
