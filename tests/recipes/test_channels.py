"""Channel modes: which channels of a layer an image excites most, least or about average."""

from __future__ import annotations

import pytest
import torch

from cnnvis.errors import InputError
from cnnvis.recipes.channels import channel_means, select_channels


def test_modes_pick_by_the_mean_activation():
    means = torch.tensor([0.5, 3.0, -1.0, 1.0, 0.9])  # average 0.88
    assert select_channels(means, "strongest", 2) == [1, 3]
    assert select_channels(means, "weakest", 2) == [2, 0]
    assert select_channels(means, "average", 2) == [4, 3]
    assert select_channels(means, "all", None) == [0, 1, 2, 3, 4]


def test_counts_are_checked():
    with pytest.raises(InputError, match="--channel-count 6 is larger than L, which has 5 channels"):
        select_channels(torch.zeros(5), "strongest", 6, "L")
    with pytest.raises(InputError, match="needs --channel-count"):
        select_channels(torch.zeros(5), "weakest", None)


def test_channel_means_on_a_model(tiny_model):
    img = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    m = channel_means(tiny_model, "conv3", img)
    assert m.shape == (16,) and torch.isfinite(m).all()
