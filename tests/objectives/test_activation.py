"""Objective scores and their gradients, combinations, index checks and the CLI objective syntax."""

from __future__ import annotations

import pytest
import torch

from cnnvis import Capture, Channel, Dream, Guide, InputError, Neuron
from cnnvis.canvas.tiling import Window
from cnnvis.objectives.base import Sum
from cnnvis.objectives.spec import parse_objective

L = "layer"


def _cap(a: torch.Tensor, layer: str = L, **more) -> Capture:
    feats = {layer: a, **more}
    b = a.shape[0]
    return Capture(torch.zeros(b, 3, 8, 8), feats, [Window(0, 8, 0, 8)] * b, (8, 8))


def _feats(*shape, seed=0, scale=4.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=g, dtype=torch.float64)).requires_grad_(True)


def _grad(obj, a, **more):
    s = obj(_cap(a, **more))
    (g,) = torch.autograd.grad(s.sum(), a)
    return s, g


@pytest.mark.parametrize("l1,l2,gc", [(1.0, 1.0, 5.0), (0.3, 2.0, 1.5), (1.0, 0.0, 5.0), (0.0, 1.0, 0.5)])
def test_dream_cnnvis_gradient(l1, l2, gc):
    a = _feats(2, 4, 5, 6)
    assert float(a.detach().abs().max()) > gc  # some activations beyond the clip
    s, g = _grad(Dream(L, "cnnvis", l1, l2, gc), a)
    assert s.shape == (2,)
    want = l1 * a.detach().abs() + l2 * a.detach().clamp(-gc, gc)
    assert torch.allclose(g, want, atol=1e-12)


def test_dream_meansquare_gradient_and_score():
    a = _feats(3, 4, 5, 2)
    s, g = _grad(Dream(L, "meansquare"), a)
    numel = 4 * 5 * 2
    assert torch.allclose(g, 2 * a.detach() / numel)
    assert torch.allclose(s, a.detach().pow(2).flatten(1).mean(1))


def test_dream_unknown_form():
    with pytest.raises(InputError, match="'cube'"):
        Dream(L, "cube")


def test_channel_score_and_gradient():
    a = _feats(2, 5, 3, 4)
    s, g = _grad(Channel(L, 3), a)
    assert torch.allclose(s, a.detach()[:, 3].flatten(1).mean(1))
    want = torch.zeros_like(a)
    want[:, 3] = 1.0 / 12
    assert torch.allclose(g, want)


def test_neuron_default_center_and_explicit_position():
    a = _feats(2, 4, 5, 6)
    s, g = _grad(Neuron(L, 1), a)
    assert torch.allclose(s, a.detach()[:, 1, 2, 3])  # h // 2 = 2, w // 2 = 3
    assert g.sum() == 2 and g[:, 1, 2, 3].tolist() == [1.0, 1.0]
    s2, g2 = _grad(Neuron(L, 2, x=5, y=0), a)
    assert torch.allclose(s2, a.detach()[:, 2, 0, 5])
    assert g2[:, 2, 0, 5].tolist() == [1.0, 1.0] and g2.sum() == 2


def test_guide_gradient_is_best_matching_guide_vector():
    c = 6
    guide = torch.randn(1, c, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    a = _feats(2, c, 5, 5, seed=2)
    s, g = _grad(Guide(L, guide), a)
    gv = guide.flatten(2)[0]  # (C, N)
    x = a.detach().flatten(2)  # (B, C, M)
    for b in range(2):
        for m in range(x.shape[2]):
            j = int((x[b, :, m] @ gv).argmax())
            assert torch.allclose(g.flatten(2)[b, :, m], gv[:, j])
        want_score = (x[b].T @ gv).max(dim=1).values.sum()
        assert torch.allclose(s[b], want_score)


def test_guide_channel_mismatch():
    obj = Guide(L, torch.zeros(1, 7, 2, 2))
    with pytest.raises(InputError, match="7 channels"):
        obj.check({L: torch.zeros(1, 8, 3, 3)})


def test_combinations():
    a = _feats(2, 4, 3, 3)
    other = _feats(2, 6, 2, 2, seed=5)
    d, ch, ne = Dream(L), Channel("other", 2), Neuron(L, 0, 1, 1)
    cap = _cap(a, other=other)
    sd, sc, sn = d(cap), ch(cap), ne(cap)
    assert torch.allclose((d + ch)(cap), sd + sc)
    assert torch.allclose((d - ch)(cap), sd - sc)
    assert torch.allclose((2.5 * d)(cap), 2.5 * sd)
    assert torch.allclose((d * 0.5)(cap), 0.5 * sd)
    assert torch.allclose((-ne)(cap), -sn)
    combo = 2 * (d - 0.5 * ch) + ne
    assert isinstance(combo, Sum)
    assert [w for w, _ in combo.terms] == [2.0, -1.0, 1.0]  # nested sums flattened
    assert torch.allclose(combo(cap), 2 * sd - sc + sn)
    assert combo.layers == (L, "other")
    with pytest.raises(TypeError):
        d + 3


def test_check_channel_out_of_range():
    feats = {L: torch.zeros(1, 16, 4, 4)}
    Channel(L, 15).check(feats)
    for bad in (16, 99, -1):
        with pytest.raises(InputError) as e:
            Channel(L, bad).check(feats)
        msg = str(e.value)
        assert str(bad) in msg and "0..15" in msg and L in msg


def test_check_neuron_position_out_of_range():
    feats = {L: torch.zeros(1, 4, 5, 7)}
    Neuron(L, 3, x=6, y=4).check(feats)
    Neuron(L, 3).check(feats)
    with pytest.raises(InputError) as e:
        Neuron(L, 3, x=7, y=0).check(feats)
    msg = str(e.value)
    assert "x=7" in msg and "0 <= x < 7" in msg and "0 <= y < 5" in msg
    with pytest.raises(InputError, match="y=5"):
        Neuron(L, 0, x=0, y=5).check(feats)
    with pytest.raises(InputError, match="channel 4"):
        Neuron(L, 4).check(feats)
    with pytest.raises(InputError, match="no channel axis"):
        Channel(L, 0).check({L: torch.zeros(5)})


def test_sum_check_checks_every_term():
    feats = {L: torch.zeros(1, 4, 3, 3)}
    with pytest.raises(InputError, match="channel 9"):
        (Dream(L) + Channel(L, 9)).check(feats)


def test_parse_objective():
    w, layer, obj = parse_objective("dream:blocks.4.2")
    assert (w, layer) == (1.0, "blocks.4.2") and isinstance(obj, Dream) and obj.form == "cnnvis"
    w, layer, obj = parse_objective("dream:L@2", dream_form="meansquare")
    assert w == 2.0 and obj.form == "meansquare"
    w, layer, obj = parse_objective("channel:L:3@0.5")
    assert (w, layer) == (0.5, "L") and isinstance(obj, Channel) and obj.channel == 3
    w, layer, obj = parse_objective("neuron:L:3:1:2")
    assert isinstance(obj, Neuron) and (obj.channel, obj.x, obj.y) == (3, 1, 2)
    _, _, obj = parse_objective("neuron:L:7")
    assert isinstance(obj, Neuron) and (obj.x, obj.y) == (None, None)
    _, _, obj = parse_objective("guide:L", guide_feats={"L": torch.zeros(1, 4, 2, 2)})
    assert isinstance(obj, Guide)


@pytest.mark.parametrize(
    "spec",
    [
        "garbage",
        "dream",
        "dream:",
        "dream:L:3",
        "channel:L",
        "channel:L:abc",
        "neuron:L:1:2",
        "blah:L",
        "channel:L:3@heavy",
        "guide:L",
    ],
)
def test_parse_objective_rejects_garbage(spec):
    with pytest.raises(InputError) as e:
        parse_objective(spec)
    assert spec in str(e.value)
