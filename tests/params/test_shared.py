"""Shared low-resolution terms of a batch (lucid's SharedImage): broadcast or interpolated across
the images, kept through resizing and checkpoints, and they make interpolation frames alike."""

from __future__ import annotations

import torch

from cnnvis.params.fourier import FourierImage
from cnnvis.params.shared import SharedTerms, batch_weights


def test_batch_weights_broadcast_or_interpolate_linearly():
    like = torch.zeros(1)
    assert torch.equal(batch_weights(5, 1, like), torch.ones(5, 1))
    w = batch_weights(5, 2, like)
    assert torch.allclose(w[:, 1], torch.tensor([0, 0.25, 0.5, 0.75, 1.0]))
    assert torch.allclose(w.sum(1), torch.ones(5))


def test_a_broadcast_term_is_the_same_for_every_image_and_a_two_image_term_moves_linearly():
    one = SharedTerms(4, 3, (32, 32), gen=torch.Generator().manual_seed(0), terms=[(4, 1)])()
    assert one.shape == (4, 3, 32, 32) and float(one.abs().max()) > 0
    assert torch.allclose(one[0], one[3])
    two = SharedTerms(3, 3, (32, 32), gen=torch.Generator().manual_seed(0), terms=[(8, 2)])()
    assert not torch.allclose(two[0], two[2])
    assert torch.allclose(two[1], (two[0] + two[2]) / 2, atol=1e-6)


def test_the_fourier_image_round_trips_with_shared_terms_and_gradients_reach_them(device):
    shared = SharedTerms(2, 3, (24, 24), gen=torch.Generator().manual_seed(1), device=device)
    for t in shared.tensors:  # large enough to matter
        t.data.mul_(100)
    x = (torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(2)) * 0.8 + 0.1).to(device)
    f = FourierImage((24, 24), init=x, device=device, batch=2, shared=shared)
    assert torch.allclose(f.image(), x, atol=1e-4)  # the spectrum takes what the terms do not
    f.image().sum().backward()
    assert len(f.parameters()) == 1 + len(shared.tensors)
    assert all(float(t.grad.abs().sum()) > 0 for t in shared.tensors)
    big = f.resized((48, 48))
    assert big.shared is not None and big.image().shape == (2, 3, 48, 48)
    assert abs(float(big.image().detach().mean()) - float(x.mean())) < 0.02


def test_sharing_makes_the_random_starts_of_a_batch_alike():
    """Relative to how far they are from grey, two images of a shared batch differ much less
    than two independent ones."""
    shared = SharedTerms(2, 3, (32, 32), gen=torch.Generator().manual_seed(3))
    for t in shared.tensors:
        t.data.mul_(10)

    def apart(img):
        return float((img[0] - img[1]).abs().mean()) / float((img - 0.5).abs().mean())

    own = FourierImage((32, 32), gen=torch.Generator().manual_seed(4), batch=2).image().detach()
    both = FourierImage((32, 32), gen=torch.Generator().manual_seed(4), batch=2, shared=shared).image().detach()
    assert apart(both) < 0.5 * apart(own)


def test_the_weight_scales_the_shared_terms_and_survives_a_resize():
    g = torch.Generator().manual_seed(0)
    full = SharedTerms(5, 3, (32, 48), gen=g)
    half = SharedTerms(5, 3, (32, 48), tensors=[t.detach() for t in full.tensors], weight=0.5)
    assert torch.allclose(half(), 0.5 * full()) and float(full().abs().max()) > 0
    assert half.resized((64, 96)).weight == 0.5


def test_an_interpolation_shares_its_terms_at_half_strength_unless_told():
    from cnnvis.recipes.prefer import PreferOptions, prefer_options

    opts = PreferOptions(interpolate="blocks.4:5:42", batch=6)
    assert prefer_options(opts, {})["shared_weight"] == 0.5
    assert prefer_options(opts, {"shared_weight": 1.0})["shared_weight"] == 1.0
