"""How a network runs: precision, channels-last and compile (cnnvis.models.compute)."""

from __future__ import annotations

import pytest
import torch

from cnnvis import Dream, Render, RenderConfig
from cnnvis.canvas.start import Start
from cnnvis.errors import InputError
from cnnvis.models.compute import (
    Execution,
    convolutional,
    execution,
    fast_bf16,
    fast_fp16,
    resolve_channels_last,
    resolve_precision,
)

CPU = torch.device("cpu")


def test_auto_precision_follows_the_hardware():
    assert resolve_precision("auto", CPU) == (torch.bfloat16 if fast_bf16(CPU) else torch.float32)
    assert resolve_precision("fp32", CPU) == torch.float32
    assert resolve_precision("bf16", CPU) == torch.bfloat16


@pytest.mark.skipif(fast_fp16(CPU), reason="this CPU computes float16 natively")
def test_fp16_on_a_cpu_without_it_is_one_line():
    with pytest.raises(InputError, match=r"--precision fp16: .*use --precision bf16 or auto"):
        resolve_precision("fp16", CPU)


def test_channels_last_auto_is_on_for_cnns_only(tiny_model):
    from torch import nn

    mlp = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Flatten(), nn.Linear(4 * 64, 512))
    assert convolutional(tiny_model.module) and not convolutional(mlp)
    assert resolve_channels_last("auto", tiny_model.module, CPU)
    assert not resolve_channels_last("auto", mlp, CPU)
    assert resolve_channels_last("on", mlp, CPU) and not resolve_channels_last("off", tiny_model.module, CPU)


def test_prepare_sets_the_memory_format_both_ways(tiny_model):
    weight = tiny_model.module.conv1.weight
    Execution(channels_last=True).prepare(tiny_model.module)
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    Execution(channels_last=False).prepare(tiny_model.module)
    assert weight.is_contiguous()


def _features_and_grad(model, run: Execution):
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    with model.capture(["blocks.3"], execution=run) as cap:
        a = cap(model.normalize(x))["blocks.3"]
    (g,) = torch.autograd.grad(a.pow(2).mean(), x)
    return a.detach(), g


def test_reduced_precision_hands_float32_features_and_a_close_gradient(lite0):
    a32, g32 = _features_and_grad(lite0, Execution())
    a16, g16 = _features_and_grad(lite0, Execution(dtype=torch.bfloat16, channels_last=True))
    Execution().prepare(lite0.module)  # the session's model back to contiguous weights
    assert a16.dtype == torch.float32 and g16.dtype == torch.float32
    assert not torch.equal(a16, a32)  # it did run in bf16
    cos = torch.nn.functional.cosine_similarity(g16.flatten(), g32.flatten(), dim=0)
    assert cos > 0.9, float(cos)  # measured 0.96: bfloat16 keeps 8 bits of mantissa
    assert torch.corrcoef(torch.stack([a16.flatten(), a32.flatten()]))[0, 1] > 0.99


def _dream(model, **compute):
    init = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    cfg = RenderConfig(final_size="96x96", steps=3, tile=64, **compute)
    r = Render(model, Dream("conv3"), cfg, Start(init=init))
    return r.run(), r


def test_a_bf16_render_repeats_bit_for_bit_and_stays_float32(tiny_model):
    a, r = _dream(tiny_model, precision="bf16", channels_last="on")
    b, _ = _dream(tiny_model, precision="bf16", channels_last="on")
    c, _ = _dream(tiny_model, precision="fp32", channels_last="off")
    assert r.execution.record() == {
        "precision": "bf16",
        "channels_last": True,
        "compile": False,
        "fold_batchnorm": True,
        "fp32_strided_depthwise": True,
    }
    assert a.dtype == torch.float32 and torch.equal(a, b)
    init = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    change_bf16, change_fp32 = (a - init).flatten(), (c - init).flatten()
    assert not torch.equal(a, c)
    assert torch.corrcoef(torch.stack([change_bf16, change_fp32]))[0, 1] > 0.9  # the same steps, give or take


def test_execution_reads_the_settings(tiny_model):
    run = execution(RenderConfig(precision="fp32", channels_last="on", compile=True).compute, tiny_model.module, CPU)
    assert (run.dtype, run.channels_last, run.compile) == (torch.float32, True, True)
