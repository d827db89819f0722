"""Inversion and masked-unit objectives: validation, weights, scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnvis.errors import InputError
from cnnvis.objectives.base import Capture
from cnnvis.objectives.inversion import Invert, MaskedUnits, expand_mask


def _cap(feats, targets=None):
    return Capture(torch.zeros(1, 3, 8, 8), feats, [], (8, 8), targets)


def test_default_weights_are_inverse_norms_summing_to_one():
    a, b = torch.ones(1, 2, 2, 2), 2 * torch.ones(1, 3, 2, 2)
    inv = Invert({"a": a, "b": b})
    wa, wb = 1 / 8, 1 / 48
    assert inv.weights["a"] == pytest.approx(wa / (wa + wb)) and inv.weights["b"] == pytest.approx(wb / (wa + wb))
    score = inv(_cap({"a": torch.zeros(1, 2, 2, 2), "b": b}))
    assert float(score) == pytest.approx(-inv.weights["a"] * 8)


def test_reference_mode_uses_capture_targets_per_tile():
    inv = Invert(reference=torch.zeros(1, 3, 8, 8), layers=["a"])
    t = torch.stack([torch.ones(2, 2, 2), 2 * torch.ones(2, 2, 2)])
    s = inv(_cap({"a": torch.zeros(2, 2, 2, 2)}, {id(inv.reference): {"a": t}}))
    # one layer: weight 1/||t||^2 normalized to one, so each tile scores minus its l2 loss
    assert s.shape == (2,) and torch.allclose(s, torch.tensor([-8.0, -32.0]))


def test_shape_mismatch_names_expected_and_got():
    inv = Invert({"a": np.ones((4, 7, 7))})
    with pytest.raises(InputError, match=r"shape \(4, 7, 7\) but the layer gives \(4, 14, 14\)"):
        inv.check({"a": torch.zeros(1, 4, 14, 14)})


def test_nan_features_mask_and_channel_errors():
    bad = np.ones((2, 3, 3))
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="1 NaN or Inf"):
        Invert({"a": bad})
    with pytest.raises(InputError, match=r"mask for layer 'a' has shape \(5,\)"):
        Invert({"a": np.ones((2, 3, 3))}, masks={"a": np.ones(5)})
    with pytest.raises(InputError, match="channel 9 is out of range"):
        Invert({"a": np.ones((2, 3, 3))}, channels={"a": [9]})
    with pytest.raises(InputError, match="not inverted"):
        Invert({"a": np.ones((2, 3, 3))}, masks={"b": np.ones(2)})
    with pytest.raises(InputError, match="either target features or a reference"):
        Invert()


@pytest.mark.parametrize("shape,want", [((2, 3, 3), (1, 2, 3, 3)), ((3, 3), (1, 1, 3, 3)), ((2,), (1, 2, 1, 1))])
def test_mask_forms(shape, want):
    assert tuple(expand_mask("a", np.ones(shape), (2, 3, 3)).shape) == want


def test_channel_list_restricts_the_loss():
    t = torch.ones(1, 2, 2, 2)
    inv = Invert({"a": t}, channels={"a": [1]}, weights={"a": 1.0})
    f = t.clone()
    f[:, 0] = 5  # channel 0 is ignored
    assert float(inv(_cap({"a": f}))) == 0


def test_masked_units_sums_the_selected_units():
    obj = MaskedUnits("a", np.array([0.0, 2.0]))
    obj.check({"a": torch.zeros(1, 2, 3, 3)})
    a = torch.arange(18.0).view(1, 2, 3, 3)
    assert float(obj(_cap({"a": a}))) == pytest.approx(2 * float(a[0, 1].sum()))
    empty = MaskedUnits("a", np.zeros(2))
    with pytest.raises(InputError, match="selects no unit"):
        empty.check({"a": torch.zeros(1, 2, 3, 3)})


def test_check_does_not_change_the_objective():
    """check() validates; it must leave the objective as it was (masks are built per shape on use)."""
    inv = Invert(reference=torch.zeros(1, 3, 8, 8), layers=["a"], channels={"a": [1]})
    before = dict(vars(inv))
    inv.check({"a": torch.zeros(1, 2, 4, 4)})
    assert {k: v for k, v in vars(inv).items() if k != "_mask_cache"} == {
        k: v for k, v in before.items() if k != "_mask_cache"
    }
    units = MaskedUnits("a", np.ones(2, np.float32))
    raw = units._raw
    units.check({"a": torch.zeros(1, 2, 4, 4)})
    assert units._raw is raw and units.layers == ("a",)
    # the same objective scores tiles of another size afterwards (no mask frozen by the probe)
    assert units(Capture(torch.zeros(1, 3, 8, 8), {"a": torch.ones(1, 2, 3, 3)}, [], (8, 8))).item() == 18.0


def test_a_sum_collects_the_references_of_its_terms():
    from cnnvis.objectives.activation import Dream

    ref_a, ref_b = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)
    total = Invert(reference=ref_a, layers=["a"]) + 0.5 * Dream("b") - Invert(reference=ref_b, layers=["a"])
    assert [id(r) for r in total.references] == [id(ref_a), id(ref_b)]
    assert total.layers == ("a", "b")
