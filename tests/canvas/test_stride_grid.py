"""The per-phase edge energy that both the grid ratio and the generator's seam term read."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnvis.canvas.stride_grid import LATTICE_PERIODS, lattice_profile, phase_profile


def test_noise_is_flat_and_blocks_peak_at_their_seams():
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(4, 3, 96, 96, generator=g)
    flat = phase_profile(noise, 8)
    assert flat.shape == (4, 2, 8)
    assert torch.allclose(flat.mean(-1), torch.ones(4, 2))
    assert float((flat - 1).abs().max()) < 0.2
    blocks = F.interpolate(torch.rand(4, 3, 12, 12, generator=g), scale_factor=8, mode="nearest")
    peaked = phase_profile(blocks, 8)
    # a step between pixel 8k - 1 and 8k makes the second difference at positions 8k - 1 and 8k
    for axis in range(2):
        top = set(peaked[:, axis].mean(0).topk(2).indices.tolist())
        assert top == {0, 7}, top
    assert float(peaked.max()) > 3


def test_the_profile_has_a_gradient_that_flattens_it():
    g = torch.Generator().manual_seed(1)
    x = (
        F.interpolate(torch.rand(2, 3, 6, 6, generator=g), scale_factor=8, mode="nearest")
        + 0.1 * torch.rand(2, 3, 48, 48, generator=g)
    ).requires_grad_()
    loss = (phase_profile(x, 8) - 1).pow(2).mean()
    loss.backward()
    with torch.no_grad():
        stepped = x - 0.5 * x.grad / x.grad.abs().max()
    assert float((phase_profile(stepped, 8) - 1).pow(2).mean()) < float(loss.detach())


def _photo() -> torch.Tensor:
    """(1, 3, 128, 128) in [0, 1]: the bundled photo's centre."""
    import imageio.v3 as iio

    from cnnvis.io.images import bundled_image_path

    a = iio.imread(bundled_image_path())[86:214, 160:288]
    return torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float() / 255


def test_a_photo_has_no_lattice_and_a_faint_checkerboard_peaks_at_its_period():
    photo = _photo()
    flat = lattice_profile(photo)
    assert flat.shape == (1, 2, len(LATTICE_PERIODS)) and float(flat.max()) < 2
    i = torch.arange(128)
    for period in (4, 8):
        wave = torch.cos(2 * torch.pi * i / period)
        lattice = 0.03 * (wave[:, None] + wave[None, :])  # 8 grey levels: faint, but a sharp peak
        profile = lattice_profile(photo + lattice)
        at = LATTICE_PERIODS.index(period)
        assert float(profile[0, :, at].min()) > 3 * max(1.0, float(flat[0, :, at].max()))


def test_the_lattice_term_has_a_gradient_that_lowers_it():
    wave = torch.cos(2 * torch.pi * torch.arange(128) / 4)
    x = (_photo() + 0.02 * (wave[:, None] + wave[None, :])).requires_grad_()
    loss = lattice_profile(x).clamp_min(1).log().pow(2).mean()
    loss.backward()
    with torch.no_grad():
        stepped = x - 0.01 * x.grad / x.grad.abs().max()
    assert float(lattice_profile(stepped).clamp_min(1).log().pow(2).mean()) < 0.8 * float(loss.detach())
