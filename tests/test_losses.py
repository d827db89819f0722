"""Feature losses against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnvis.errors import InputError
from cnnvis.losses import feature_loss, target_norm

F = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, -1.0], [2.0, 1.0]]]])  # (1, 2, 2, 2)
T = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]], [[1.0, 1.0], [0.0, 0.0]]]])


def test_l2_l1_inner_by_hand():
    # differences: ch0 [0, 2, 2, 3], ch1 [-1, -2, 2, 1]
    assert float(feature_loss(F, T, "l2")) == pytest.approx(0 + 4 + 4 + 9 + 1 + 4 + 4 + 1)
    assert float(feature_loss(F, T, "l1")) == pytest.approx(0 + 2 + 2 + 3 + 1 + 2 + 2 + 1)
    # inner: 1*1 + 2*0 + 3*1 + 4*1 + 0*1 + -1*1 + 2*0 + 1*0 = 7
    assert float(feature_loss(F, T, "inner")) == pytest.approx(-7)


def test_masks_select_entries():
    spatial = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # only the top-left position
    assert float(feature_loss(F, T, "l2", spatial)) == pytest.approx(0 + 1)
    per_channel = torch.tensor([0.0, 1.0]).view(1, 2, 1, 1)
    assert float(feature_loss(F, T, "l2", per_channel)) == pytest.approx(1 + 4 + 4 + 1)


def test_gram_by_hand():
    f = F.reshape(2, 4)
    t = T.reshape(2, 4)
    want = float(((f @ f.T / 4 - t @ t.T / 4) ** 2).sum())
    assert float(feature_loss(F, T, "gram")) == pytest.approx(want)
    # the Gram loss ignores where features are: a spatial permutation of the target is free
    assert float(feature_loss(T.flip(-1), T, "gram")) == pytest.approx(0, abs=1e-6)


def test_corr_by_hand_and_invariance():
    a, b = F.flatten().numpy(), T.flatten().numpy()
    assert float(feature_loss(F, T, "corr")) == pytest.approx(1 - np.corrcoef(a, b)[0, 1], rel=1e-5)
    assert float(feature_loss(3 * T + 2, T, "corr")) == pytest.approx(0, abs=1e-6)


def test_batch_gives_one_value_per_item():
    f = torch.cat([F, T])
    out = feature_loss(f, T, "l2")
    assert out.shape == (2,) and float(out[1]) == 0


def test_target_norm_and_unknown_loss():
    assert target_norm(T) == pytest.approx(float((T ** 2).sum()))
    with pytest.raises(InputError, match="unknown loss 'l3'"):
        feature_loss(F, T, "l3")
    with pytest.raises(InputError, match="spatial"):
        feature_loss(torch.ones(1, 4), torch.ones(1, 4), "gram")
