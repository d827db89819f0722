"""The fully convolutional generator that train-generator makes."""

from __future__ import annotations

import pytest
import torch

from cnnvis.priors.generators.upconv import UpconvGenerator


@pytest.mark.parametrize("stride,hw", [(2, (5, 7)), (8, (3, 4)), (32, (2, 3))])
def test_output_is_latent_times_stride(stride, hw):
    g = UpconvGenerator(6, stride, latent_hw=hw, width=16, min_width=4)
    out = g(torch.randn(2, 6, *hw))
    assert out.shape == (2, 3, hw[0] * stride, hw[1] * stride)
    assert g.output_size == (hw[0] * stride, hw[1] * stride)
    assert g.latent_shape == (6, *hw)
    # fully convolutional: another latent size gives the matching image size
    assert g(torch.randn(1, 6, hw[0] + 1, hw[1])).shape[-2:] == ((hw[0] + 1) * stride, hw[1] * stride)


def test_starts_at_mid_grey_and_config_rebuilds_it():
    torch.manual_seed(0)
    g = UpconvGenerator(4, 4, latent_hw=(3, 3), width=8, min_width=4)
    with torch.no_grad():
        assert abs(float(g(torch.zeros(1, 4, 3, 3)).mean()) - 0.5) < 0.1
    h = UpconvGenerator(**g.config())
    h.load_state_dict(g.state_dict())
    z = torch.randn(1, 4, 3, 3)
    assert torch.equal(g(z), h(z))


def test_widths_halve_per_stage_down_to_min_width():
    g = UpconvGenerator(16, 16, width=64, min_width=8)
    ups = [m for m in g.net if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [m.out_channels for m in ups] == [64, 32, 16, 8]


@pytest.mark.parametrize("stride", [1, 3, 128])
def test_bad_stride(stride):
    with pytest.raises(ValueError, match="power of two"):
        UpconvGenerator(4, stride)


def test_wrong_latent_channels():
    g = UpconvGenerator(4, 2, width=8, min_width=4)
    with pytest.raises(ValueError, match=r"\(B, 4, h, w\)"):
        g(torch.zeros(1, 5, 2, 2))


@pytest.mark.parametrize("upsample", ["transposed", "nearest", "bilinear"])
def test_config_records_the_upsampling(upsample):
    g = UpconvGenerator(8, 4, (3, 3), width=8, upsample=upsample)
    again = UpconvGenerator(**g.config())
    again.load_state_dict(g.state_dict())
    z = torch.randn(1, 8, 3, 3)
    assert torch.equal(g(z), again(z))
    assert UpconvGenerator(8, 4, (3, 3), width=8).upsample == "transposed"  # old files: no key, DeePSiM's


def test_resize_convolutions_draw_no_checkerboard_where_transposed_ones_do():
    """A constant latent through random weights: a transposed convolution's output phases use
    different taps (a period-2 pattern, stacked into a grid at the stride); resize-convolutions
    give every interior pixel the same value."""
    torch.manual_seed(0)
    z = torch.ones(1, 8, 12, 12)  # 96 px out; the zero padding reaches 23 px in
    for upsample, flat in (("nearest", True), ("bilinear", True), ("transposed", False)):
        g = UpconvGenerator(8, 8, (12, 12), width=16, upsample=upsample)
        with torch.no_grad():
            for m in g.modules():  # weights far from zero, so that the taps differ clearly
                if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                    m.weight.normal_(0, 0.3)
            inner = g(z)[0, :, 32:-32, 32:-32]
        spread = float((inner - inner.mean((1, 2), keepdim=True)).abs().max() / inner.abs().max())  # relative
        assert (spread < 1e-5) == flat, (upsample, spread)


def test_an_unknown_upsampling_is_refused():
    with pytest.raises(ValueError, match="bilinear"):
        UpconvGenerator(8, 4, (3, 3), upsample="bicubic")
