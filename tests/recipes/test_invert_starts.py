"""How many starts an inversion renders (cnnvis.recipes.recon.invert_starts)."""

from __future__ import annotations

import pytest

from cnnvis.defaults import INVERT_TOP_STARTS, TOP_DEPTH
from cnnvis.errors import InputError
from cnnvis.recipes.recon import invert_starts


def test_the_last_layers_from_noise_take_several_starts():
    assert invert_starts(None, [TOP_DEPTH + 0.01], "noise") == INVERT_TOP_STARTS > 1
    assert invert_starts(None, [TOP_DEPTH - 0.05], "noise") == 1  # blocks.5: its layout holds
    assert invert_starts(None, [0.2, TOP_DEPTH + 0.01], "noise") == 1  # a shallow layer pins the layout
    assert invert_starts(None, [TOP_DEPTH + 0.01], "mean") == 1  # one start picture: every start alike


def test_given_starts_are_kept_and_checked():
    assert invert_starts(2, [0.1], "mean") == 2
    with pytest.raises(InputError, match="--starts must be at least 1, got 0"):
        invert_starts(0, [0.1], "noise")
