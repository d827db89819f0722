"""Image penalties as objectives (lucid's L1, L2, blur), subtracted from an objective."""

from __future__ import annotations

import pytest
import torch

from cnnvis.canvas.tiling import Window
from cnnvis.objectives.activation import Channel
from cnnvis.objectives.base import Capture, Sum
from cnnvis.objectives.penalties import L1, L2, Blur


def _cap(x):
    return Capture(x, {"L": torch.zeros(x.shape[0], 2, 1, 1)}, [Window(0, 4, 0, 4)] * x.shape[0], (4, 4))


def test_values():
    x = torch.full((1, 3, 4, 4), 0.75)
    assert float(L1()(_cap(x))) == pytest.approx(0.75 * 48)
    assert float(L1(0.5)(_cap(x))) == pytest.approx(0.25 * 48)
    assert float(L2()(_cap(x))) == pytest.approx((0.75**2 * 48 + 1e-6) ** 0.5)
    assert float(Blur()(_cap(x))) == pytest.approx(0.0, abs=1e-10)  # a flat image is its own blur
    checker = (torch.arange(16).view(4, 4) % 2).float().expand(1, 3, 4, 4)
    assert float(Blur()(_cap(checker))) > 0


def test_subtracting_a_penalty_composes_as_in_lucid():
    obj = Channel("L", 0) - 0.05 * L1()
    assert isinstance(obj, Sum) and [w for w, _ in obj.terms] == [1.0, -0.05]
    x = torch.full((1, 3, 4, 4), 1.0, requires_grad=True)
    s = obj(_cap(x))
    (g,) = torch.autograd.grad(s.sum(), x)
    assert torch.allclose(g, torch.full_like(g, -0.05))  # the penalty pushes every pixel down


def test_the_command_line_spelling_of_penalties():
    from cnnvis.errors import InputError
    from cnnvis.objectives.spec import parse_objective

    w, layer, obj = parse_objective("l1:0.5@-0.05")
    assert (w, layer) == (-0.05, None) and isinstance(obj, L1) and obj.constant == 0.5
    assert isinstance(parse_objective("l2")[2], L2)
    assert parse_objective("blur:2")[2].sigma == 2
    for bad, words in [
        ("blur:0", "sigma must be > 0"),
        ("l1:x", "non-numeric constant"),
        ("l2:1:2", "at most one number"),
    ]:
        with pytest.raises(InputError, match=words):
            parse_objective(bad)
