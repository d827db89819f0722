"""Render.checkpoint / run(resume=...): an interrupted run finishes bit for bit as if never stopped."""

from __future__ import annotations

import io

import pytest
import torch

from cnnvis.canvas.start import Start
from cnnvis.config import RenderConfig
from cnnvis.errors import InputError
from cnnvis.objectives.activation import Channel
from cnnvis.params.generator import GeneratorStages
from cnnvis.pipeline.loop import Render
from cnnvis.priors.dgn import DGNPrior
from cnnvis.priors.generators.upconv import UpconvGenerator


def _prior():
    torch.manual_seed(0)
    g = UpconvGenerator(16, 2, latent_hw=(16, 16), width=8, min_width=4).eval()
    for p in g.parameters():
        p.requires_grad_(False)
    return DGNPrior(g, torch.full((16,), 3.0), encoder_layer="relu2")


CASES = {
    "rmsprop": dict(optimizer="rmsprop", lr=0.02),
    "adam-fft": dict(optimizer="adam", lr=0.05, param="fft"),
    "lbfgs": dict(optimizer="lbfgs", lr=1.0),
    "gd-pixelops": dict(
        optimizer="gd", lr=0.02, momentum=0.9, momentum_end=0.5, pixel_decay=0.01, blur_every=2, clip_small_norm=5.0
    ),
    "dgn": dict(optimizer="adam", lr=0.01, latent_lr=0.1),
}


def _render(tiny_model, kw, init):
    cfg = RenderConfig(
        steps=4,
        tile=32,
        overlap=8,
        initial_size="32x32",
        final_size="40x40",
        num_sizes=2,
        jitter=2,
        seed=3,
        **{k: v for k, v in kw.items()},
    )
    return Render(
        tiny_model,
        Channel("conv3", 1),
        cfg,
        Start(init=init),
        stages=GeneratorStages(_prior()) if "latent_lr" in kw else None,
    )


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("stop_at", [3, 4])  # inside the first size, and at its end
def test_resume_equals_the_uninterrupted_run(tiny_model, case, stop_at):
    init = torch.rand(1, 3, 36, 36, generator=torch.Generator().manual_seed(1))
    straight = _render(tiny_model, CASES[case], init).run()
    saved = {}

    def cb(p):
        if p.step == stop_at:
            buf = io.BytesIO()
            torch.save(p.render.checkpoint(), buf)  # what the CLI writes to NAME.ckpt
            saved["ck"] = buf.getvalue()
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _render(tiny_model, CASES[case], init).run(cb)
    ck = torch.load(io.BytesIO(saved["ck"]), weights_only=True)
    steps = []
    resumed = _render(tiny_model, CASES[case], init).run(lambda p: steps.append(p.step), resume=ck)
    assert steps == list(range(stop_at + 1, 9))
    assert torch.equal(resumed, straight)


def test_resume_with_another_plan_is_refused(tiny_model):
    r = _render(tiny_model, CASES["rmsprop"], None)
    saved = {}

    def cb(p):
        saved["ck"] = p.render.checkpoint()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        r.run(cb)
    other = Render(tiny_model, Channel("conv3", 1), RenderConfig(steps=4, tile=32, final_size="48x48"))
    with pytest.raises(InputError, match="size plan"):
        other.run(resume=saved["ck"])
