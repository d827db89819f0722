"""--alpha-from-grad: the accumulated |objective gradient| becomes the alpha of an RGBA image."""

from __future__ import annotations

import imageio.v3 as iio
import torch
from conftest import assert_one_line_error, invoke

from cnnvis import Neuron, Render, RenderConfig
from cnnvis.canvas.start import Start
from cnnvis.pipeline.attribution import accumulate, attribution_alpha


def test_accumulate_resizes_across_sizes():
    total = accumulate(None, torch.ones(1, 3, 4, 4))
    assert torch.equal(total, torch.full((1, 1, 4, 4), 3.0))
    total = accumulate(total, -torch.ones(1, 3, 8, 8))
    assert total.shape == (1, 1, 8, 8) and torch.allclose(total, torch.full_like(total, 6.0))
    alpha = attribution_alpha(total, (8, 8))
    assert torch.allclose(alpha, torch.ones_like(alpha))


def test_a_neurons_alpha_sits_on_its_receptive_field(tiny_model):
    """A neuron of conv3 (stride 2, a few pixels of receptive field) at the map's corner: the
    image is opaque there and transparent far from it."""
    cfg = RenderConfig(steps=3, lr=0.02, seed=0, alpha_from_grad=True, shift=False)
    r = Render(tiny_model, Neuron("conv3", 1, x=2, y=2), cfg, Start(size=(32, 32)), device="cpu")
    out = r.run()
    assert out.shape == (1, 4, 32, 32)
    alpha = out[0, 3]
    assert float(alpha[2:8, 2:8].mean()) > 0.5 and float(alpha[20:, 20:].max()) < 0.05
    assert r.image().shape == (1, 4, 32, 32)  # what an interrupted run saves carries it too


def test_cli_writes_rgba_png_and_refuses_jpeg(tmp_path, tiny_cli):
    args = ["prefer", *tiny_cli, "--layer", "conv3", "--channel", 1, "--steps", 2, "--alpha-from-grad", "-q"]
    res = invoke([*args, "-o", tmp_path / "a.png"])
    assert res.exit_code == 0, res.output
    assert iio.imread(tmp_path / "a.png").shape[-1] == 4
    assert_one_line_error(invoke([*args, "-o", tmp_path / "a.jpg"]), "--alpha-from-grad needs a PNG output")
