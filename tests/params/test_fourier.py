"""The Fourier parameterization: a valid image, invertible, resizable."""

from __future__ import annotations

import torch

from cnnvis.params.fourier import FourierImage


def test_random_start_is_a_valid_grey_image(device):
    img = FourierImage((32, 48), gen=torch.Generator().manual_seed(0), device=device).image().detach()
    assert img.shape == (1, 3, 32, 48) and img.device.type == device.type
    assert float(img.min()) > 0 and float(img.max()) < 1
    assert abs(float(img.mean()) - 0.5) < 0.05


def test_image_round_trip_and_gradient_reaches_the_spectrum(device):
    x = (torch.rand(1, 3, 24, 30, generator=torch.Generator().manual_seed(1)) * 0.8 + 0.1).to(device)
    f = FourierImage((24, 30), init=x, device=device)
    assert torch.allclose(f.image(), x, atol=1e-4)
    f.image().sum().backward()
    assert f.spectrum.grad is not None and float(f.spectrum.grad.abs().sum()) > 0


def test_low_frequencies_get_larger_steps(device):
    f = FourierImage((32, 32), sd=0.0, device=device)
    assert float(f.scale[0, 0]) > 10 * float(f.scale[16, 16])


def test_resized_keeps_the_picture(device):
    x = (torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2)) * 0.6 + 0.2).to(device)
    f = FourierImage((16, 16), init=x, device=device).resized((32, 32))
    assert f.image().shape == (1, 3, 32, 32)
    assert f.spectrum.device.type == device.type
    assert abs(float(f.image().detach().mean()) - float(x.mean())) < 0.02
