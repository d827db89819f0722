"""Eval-mode BatchNorm folded into its convolution (cnnvis.models.fold_batchnorm)."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnnvis.models.compute import Execution
from cnnvis.models.fold_batchnorm import candidate_pairs, set_folds

PROBE = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))


def _bn(channels: int) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(channels)
    g = torch.Generator().manual_seed(channels)
    bn.running_mean.copy_(torch.randn(channels, generator=g))
    bn.running_var.copy_(torch.rand(channels, generator=g) + 0.5)
    bn.weight.data.copy_(torch.randn(channels, generator=g))
    bn.bias.data.copy_(torch.randn(channels, generator=g))
    return bn


class _NormFirst(nn.Module):
    """A conv and a BatchNorm declared in order, but the BatchNorm runs on the input: not foldable."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(channels, channels, 3, padding=1), _bn(channels)

    def forward(self, x):
        return self.conv(self.bn(x))


def _features_and_grad(model, run: Execution, layer: str = "blocks.3"):
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    with model.capture([layer], execution=run) as cap:
        a = cap(model.normalize(x))[layer]
    (g,) = torch.autograd.grad(a.pow(2).mean(), x)
    return a.detach(), g


def test_folding_lite0_keeps_features_and_gradients_and_unfolds_exactly(lite0):
    original = {k: v.clone() for k, v in lite0.module.state_dict().items()}
    a, g = _features_and_grad(lite0, Execution())
    fa, fg = _features_and_grad(lite0, Execution(fold_batchnorm=True))
    assert lite0.module.conv_stem.weight.data_ptr() != 0 and len(candidate_pairs(lite0.module)) >= 40
    folded_stem = lite0.module.conv_stem.weight.clone()
    assert (fa - a).abs().max() <= 1e-4 * a.abs().max()
    assert (fg - g).abs().max() <= 1e-3 * g.abs().max()
    assert not torch.equal(folded_stem, original["conv_stem.weight"])  # the weights did change
    _features_and_grad(lite0, Execution())  # a capture without folding unfolds
    for k, v in lite0.module.state_dict().items():
        assert torch.equal(v, original[k]), k


def test_a_captured_convolution_is_not_folded(lite0):
    conv = "blocks.3.0.conv_pwl"
    a, _ = _features_and_grad(lite0, Execution(), conv)
    fa, _ = _features_and_grad(lite0, Execution(fold_batchnorm=True), conv)
    assert torch.allclose(fa, a, rtol=1e-4, atol=1e-5)  # still the convolution's own output, before its norm
    Execution().refold(lite0.module, ())


def test_only_a_norm_that_takes_the_convs_output_is_folded():
    net = nn.Sequential(
        OrderedDict([("conv", nn.Conv2d(3, 4, 3)), ("bn", _bn(4)), ("relu", nn.ReLU()), ("rest", _NormFirst(4))])
    ).eval()
    before = net(PROBE)
    folded = set_folds(net, True, (), PROBE)
    assert folded == [("conv", "bn")]  # rest.conv -> rest.bn is declared in order but not run in order
    assert torch.allclose(net(PROBE), before, atol=1e-5)
    assert set_folds(net, False) == [] and torch.equal(net(PROBE), before)


def test_a_norm_in_training_mode_is_never_folded():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), _bn(4))
    net[1].train()
    assert candidate_pairs(net) == [] and set_folds(net, True, (), PROBE) == []


def test_a_refold_without_a_probe_folds_only_what_was_verified():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), _bn(4)).eval()
    assert set_folds(net, True) == []  # never probed: nothing is assumed
    assert set_folds(net, True, (), PROBE) == [("0", "1")]
    assert set_folds(net, True, keep=("0",)) == []  # kept for a capture of the conv
    assert set_folds(net, True) == [("0", "1")]


def test_channels_last_weights_stay_channels_last_when_folded():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), _bn(4)).eval()
    Execution(channels_last=True, fold_batchnorm=True).prepare(net)
    w = net[0].weight
    assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    set_folds(net, False)
    set_folds(net, True)
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last)
