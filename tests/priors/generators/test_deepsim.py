"""DeePSiM generators: shapes of every architecture, and the name mapping from a Caffe
generator.prototxt (+ caffemodel) converted by cnnvis.caffe onto the PyTorch modules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import caffe_conv, caffe_relu, norm1_generator_prototxt, write_caffemodel_of

from cnnvis.errors import InputError
from cnnvis.models.caffe import CaffeNet, parse_prototxt
from cnnvis.priors.generators.deepsim import DEEPSIM_ARCHS, DeePSiMGenerator, deepsim_from_caffe, infer_deepsim_arch

OUTPUT = {
    "deepsim-fc6": (256, 256),
    "deepsim-fc7": (256, 256),
    "deepsim-fc8": (256, 256),
    "deepsim-pool5": (256, 256),
    "deepsim-conv3": (256, 256),
    "deepsim-conv4": (256, 256),
    "deepsim-norm1": (240, 240),
    "deepsim-norm2": (240, 240),
}


def fc6_generator_prototxt() -> str:
    """The release_deepsim_v0 fc6 generator.prototxt (batch 64 as released), in Caffe syntax."""
    text = 'input: "feat"\ninput_shape { dim: 64 dim: 4096 }\n'
    bottom = "feat"
    for name in ("defc7", "defc6", "defc5"):
        text += (
            f'layer {{ name: "{name}" type: "InnerProduct" bottom: "{bottom}" top: "{name}"\n'
            "  param { lr_mult: 1 decay_mult: 0 } param { lr_mult: 1 decay_mult: 0 } "
            "inner_product_param { num_output: 4096 } }\n"
        )
        text += caffe_relu(f"relu_{name}", name)
        bottom = name
    text += (
        'layer { name: "reshape" type: "Reshape" bottom: "defc5" top: "reshape_defc5"\n'
        "  reshape_param { shape { dim: 64 dim: 256 dim: 4 dim: 4 } } }\n"
    )
    bottom = "reshape_defc5"
    for name, out, k, s in [
        ("deconv5", 256, 4, 2),
        ("conv5_1", 512, 3, 1),
        ("deconv4", 256, 4, 2),
        ("conv4_1", 256, 3, 1),
        ("deconv3", 128, 4, 2),
        ("conv3_1", 128, 3, 1),
        ("deconv2", 64, 4, 2),
        ("deconv1", 32, 4, 2),
    ]:
        text += caffe_conv(name, "Deconvolution", bottom, name, out, k, s, 1) + caffe_relu(f"relu_{name}", name)
        bottom = name
    return text + caffe_conv("deconv0", "Deconvolution", bottom, "generated", 3, 4, 2, 1)


def _shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def fc6_caffenet() -> CaffeNet:
    torch.manual_seed(0)
    return CaffeNet(parse_prototxt(fc6_generator_prototxt()), weights=None)


@pytest.mark.parametrize("arch", sorted(DEEPSIM_ARCHS))
def test_every_arch_output_shape(arch):
    with torch.device("meta"):  # shapes only: the fc generators have 56 M parameters
        gen = DEEPSIM_ARCHS[arch]()
        out = gen(torch.empty(2, *gen.latent_shape))
    assert gen.arch == arch and gen.output_size == OUTPUT[arch]
    assert tuple(out.shape) == (2, 3, *OUTPUT[arch])
    assert gen.bgr_mean == (104.0, 117.0, 123.0) and gen.config() == {"arch": arch}
    assert gen.spatial == (len(gen.latent_shape) == 3)


@pytest.mark.parametrize("arch", ["deepsim-norm1", "deepsim-norm2", "deepsim-conv4"])
def test_spatial_archs_run_and_grow_with_the_latent(arch):
    torch.manual_seed(1)
    gen = DeePSiMGenerator(arch).eval()
    c, h, w = gen.latent_shape
    with torch.no_grad():
        out = gen(torch.randn(1, c, h, w))
        big = gen(torch.randn(1, c, h + 4, w + 2))
    assert out.shape == (1, 3, *OUTPUT[arch]) and torch.isfinite(out).all()
    assert out.abs().max() <= 255  # 255 * tanh
    assert big.shape[2:] == gen.output_hw(h + 4, w + 2) and big.shape[2] > out.shape[2]


def test_config_rebuilds_and_bad_latent():
    with torch.device("meta"):
        gen = DEEPSIM_ARCHS["deepsim-pool5"]()
        again = type(gen)(**gen.config())
        assert _shapes(again) == _shapes(gen) and gen.output_hw(8, 6) == (64 * 6, 64 * 4)
        with pytest.raises(ValueError, match=r"expects a latent \(B, 256, h, w\)"):
            gen(torch.empty(1, 4096))


def test_fc6_caffe_prototxt_maps_onto_the_module_by_name(fc6_caffenet):
    net = fc6_caffenet
    with torch.device("meta"):
        gen = DeePSiMGenerator("deepsim-fc6")
    assert _shapes(net) == _shapes(gen)
    assert list(net.state_dict()) == list(gen.state_dict())  # same order too
    gen.load_state_dict(net.state_dict(), assign=True)
    z = torch.randn(2, 4096, generator=torch.Generator().manual_seed(2)) * 5
    with torch.no_grad():
        want = net(z)  # batch 2 through the released 'dim: 64' reshape
        torch.testing.assert_close(gen(z), want, atol=1e-5, rtol=1e-4)
    assert want.shape == (2, 3, 256, 256)
    assert net.blob_shapes["generated"] == (64, 3, 256, 256)
    assert infer_deepsim_arch(net.state_dict()) == "deepsim-fc6"
    assert infer_deepsim_arch(net.state_dict(), "nets/upconv/fc7/generator.caffemodel") == "deepsim-fc7"


def test_deepsim_from_caffe_norm1_round_trip(tmp_path):
    prototxt = tmp_path / "generator.prototxt"
    prototxt.write_text(norm1_generator_prototxt())
    torch.manual_seed(3)
    ref = CaffeNet(str(prototxt), weights=None)
    model = write_caffemodel_of(tmp_path / "generator.caffemodel", ref)
    gen = deepsim_from_caffe(prototxt, model)
    assert gen.arch == "deepsim-norm1" and not gen.training
    z = torch.randn(2, 96, 27, 27, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        want = ref(z)
        torch.testing.assert_close(gen(z), want, atol=1e-4, rtol=1e-5)
    assert want.shape == (2, 3, 240, 240)
    rgb = gen.to_rgb(want)
    np.testing.assert_allclose(gen.from_rgb(rgb).numpy(), want.numpy(), atol=1e-3)
    with pytest.raises(InputError, match="does not fit deepsim-norm2"):
        deepsim_from_caffe(prototxt, model, arch="deepsim-norm2")
    with pytest.raises(InputError, match="unknown DeePSiM architecture"):
        deepsim_from_caffe(prototxt, model, arch="fc6")


def test_infer_arch_rejects_other_nets():
    with pytest.raises(InputError, match="matches no DeePSiM generator"):
        infer_deepsim_arch({"conv1.weight": torch.zeros(8, 3, 3, 3)})
    with torch.device("meta"):
        state = DeePSiMGenerator("deepsim-conv4").state_dict()
    assert infer_deepsim_arch(state) == "deepsim-conv4"
    assert infer_deepsim_arch(state, "release_deepsim_v0/conv3/generator.caffemodel") == "deepsim-conv3"
