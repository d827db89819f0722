"""Strided depthwise convolutions out of a bf16 autocast (cnnvis.models.strided_depthwise)."""

from __future__ import annotations

import torch
from torch import nn

from cnnvis.config import RenderConfig
from cnnvis.models.compute import Execution, execution
from cnnvis.models.strided_depthwise import set_float32_strided_depthwise, strided_depthwise

CPU = torch.device("cpu")


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8),  # strided depthwise: switched
        nn.Conv2d(8, 8, 3, padding=1, groups=8),  # depthwise, stride 1: kept
        nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2),  # grouped, not depthwise: kept
    )


def test_the_candidates_are_the_strided_depthwise_convolutions(lite0):
    assert strided_depthwise(_net()) == ["2"]
    names = strided_depthwise(lite0.module)
    modules = dict(lite0.module.named_modules())
    assert len(names) == 4  # one a stage that halves the size, after the stem
    assert all(modules[n].groups == modules[n].in_channels and max(modules[n].stride) == 2 for n in names)


def test_a_switched_convolution_runs_in_float32_under_bf16_autocast_and_as_before_outside():
    net, x = _net(), torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = net(x)
        set_float32_strided_depthwise(net, True)
        assert torch.equal(net(x), before)  # outside autocast: the class's forward, bit for bit
        seen = {}
        net[2].register_forward_hook(lambda m, i, o: seen.update(inp=i[0], out=o))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            net(x)
    assert seen["inp"].dtype == torch.bfloat16 and seen["out"].dtype == torch.float32
    expected = nn.functional.conv2d(seen["inp"].float(), net[2].weight, net[2].bias, stride=2, padding=1, groups=8)
    assert torch.equal(seen["out"], expected)


def test_switching_off_restores_the_class_forward():
    net = _net()
    assert set_float32_strided_depthwise(net, True) == ["2"]
    assert "forward" in vars(net[2])
    assert set_float32_strided_depthwise(net, False) == []
    assert "forward" not in vars(net[2])


def test_auto_is_on_for_bf16_on_a_cpu_only(tiny_model):
    def resolved(**settings):
        return execution(RenderConfig(**settings).compute, tiny_model.module, CPU).fp32_strided_depthwise

    assert resolved(precision="bf16") and not resolved(precision="fp32")
    assert resolved(precision="fp32", fp32_strided_depthwise="on")
    assert not resolved(precision="bf16", fp32_strided_depthwise="off")


def test_the_gradient_through_lite0_stays_close_to_float32(lite0):
    x = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(2))

    def grad(run: Execution) -> torch.Tensor:
        run.prepare(lite0.module)
        xi = x.clone().requires_grad_(True)
        with lite0.capture(["blocks.4"], execution=run) as cap:
            a = cap(lite0.normalize(xi))["blocks.4"]
        return torch.autograd.grad(a.pow(2).mean(), xi)[0].flatten()

    g32 = grad(Execution())
    g16 = grad(Execution(dtype=torch.bfloat16, channels_last=True, fp32_strided_depthwise=True))
    Execution().prepare(lite0.module)  # the session's model back as it was
    assert "forward" not in vars(lite0.module.get_submodule(strided_depthwise(lite0.module)[0]))
    assert torch.nn.functional.cosine_similarity(g16, g32, dim=0) > 0.9
