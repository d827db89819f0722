"""Feature losses against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnvis.errors import InputError
from cnnvis.objectives.losses import feature_loss, target_norm

F = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, -1.0], [2.0, 1.0]]]])  # (1, 2, 2, 2)
T = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]], [[1.0, 1.0], [0.0, 0.0]]]])


def test_l2_l1_inner_by_hand(device):
    f, t = F.to(device), T.to(device)
    # differences: ch0 [0, 2, 2, 3], ch1 [-1, -2, 2, 1]
    assert float(feature_loss(f, t, "l2")) == pytest.approx(0 + 4 + 4 + 9 + 1 + 4 + 4 + 1)
    assert float(feature_loss(f, t, "l1")) == pytest.approx(0 + 2 + 2 + 3 + 1 + 2 + 2 + 1)
    # inner: 1*1 + 2*0 + 3*1 + 4*1 + 0*1 + -1*1 + 2*0 + 1*0 = 7
    assert float(feature_loss(f, t, "inner")) == pytest.approx(-7)


def test_masks_select_entries(device):
    f, t = F.to(device), T.to(device)
    spatial = torch.tensor([[1.0, 0.0], [0.0, 0.0]], device=device)  # only the top-left position
    assert float(feature_loss(f, t, "l2", spatial)) == pytest.approx(0 + 1)
    per_channel = torch.tensor([0.0, 1.0], device=device).view(1, 2, 1, 1)
    assert float(feature_loss(f, t, "l2", per_channel)) == pytest.approx(1 + 4 + 4 + 1)


def test_gram_by_hand(device):
    f2, t2 = F.reshape(2, 4), T.reshape(2, 4)  # the reference, on the CPU
    want = float(((f2 @ f2.T / 4 - t2 @ t2.T / 4) ** 2).sum())
    f, t = F.to(device), T.to(device)
    assert float(feature_loss(f, t, "gram")) == pytest.approx(want)
    # the Gram loss ignores where features are: a spatial permutation of the target is free
    assert float(feature_loss(t.flip(-1), t, "gram")) == pytest.approx(0, abs=1e-6)


def test_corr_by_hand_and_invariance(device):
    a, b = F.flatten().numpy(), T.flatten().numpy()
    f, t = F.to(device), T.to(device)
    assert float(feature_loss(f, t, "corr")) == pytest.approx(1 - np.corrcoef(a, b)[0, 1], rel=1e-5)
    assert float(feature_loss(3 * t + 2, t, "corr")) == pytest.approx(0, abs=1e-6)


def test_batch_gives_one_value_per_item(device):
    t = T.to(device)
    f = torch.cat([F.to(device), t])
    out = feature_loss(f, t, "l2")
    assert out.shape == (2,) and float(out[1]) == 0
    assert out.device.type == device.type


def test_target_norm_and_unknown_loss(device):
    t = T.to(device)
    assert target_norm(t) == pytest.approx(float((T**2).sum()))
    with pytest.raises(InputError, match="unknown loss 'l3'"):
        feature_loss(F.to(device), t, "l3")
    with pytest.raises(InputError, match="spatial"):
        feature_loss(torch.ones(1, 4, device=device), torch.ones(1, 4, device=device), "gram")
