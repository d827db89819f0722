"""--param maco: the phase is optimized, the amplitude stays at the natural photos' spectrum."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, invoke

from cnnvis import Channel, InputError, Render, RenderConfig
from cnnvis.canvas.start import Start
from cnnvis.params import PARAM_KINDS
from cnnvis.params.color import COLOR, mix
from cnnvis.params.maco import MacoParam, read_spectrum, spectrum_at


def test_shipped_spectrum_is_a_natural_falloff():
    s = read_spectrum(None)
    assert s.shape == (3, 256, 129) and torch.isfinite(s).all()
    # low frequencies (rfft2's row 0 and the rows just above and below it) carry more than high ones
    low = s[:, [1, 2, 254, 255], :3].mean()
    high = s[:, 100:156, 60:].mean()
    assert low > 10 * high


def test_spectrum_resizes_with_low_frequencies_in_place():
    s = read_spectrum(None)
    big = spectrum_at(s, (300, 500))
    assert big.shape == (3, 300, 251)
    # the energy near the zero frequency (rows at both ends, first columns) stays the largest
    assert big[:, [1, -1], :3].mean() > 5 * big[:, 140:160, 200:].mean()


def test_bad_spectrum_file_is_one_line(tmp_path):
    bad = tmp_path / "s.npy"
    np.save(bad, np.ones((3, 64, 64), np.float32))
    with pytest.raises(InputError, match=r"holds shape \(3, 64, 64\); it needs \(3, H, H // 2 \+ 1\)"):
        read_spectrum(str(bad))
    junk = tmp_path / "junk.npy"
    junk.write_text("not numpy")
    with pytest.raises(InputError, match="is not a .npy array"):
        read_spectrum(str(junk))


def _param(size=(48, 64), batch=2, seed=0, **cfg):
    from cnnvis.params import ParamContext

    ctx = ParamContext(
        RenderConfig(param="maco", **cfg),
        torch.device("cpu"),
        torch.Generator().manual_seed(seed),
        (0.5, 0.5, 0.5),
        batch=batch,
    )
    return ctx, MacoParam.create(ctx, size, None)


def test_images_keep_the_template_amplitude():
    ctx, p = _param()
    x = p.images().detach()
    assert x.shape == (2, 3, 48, 64) and 0 < float(x.min()) and float(x.max()) < 1
    # back through the sigmoid and the colour map: the spectrum's amplitude is the template's, scaled
    y = mix(torch.linalg.inv(COLOR), torch.logit(x.double()).float())
    # (the zero and Nyquist columns are left out: irfft2 keeps only their Hermitian part)
    amp = torch.fft.rfft2(y, norm="ortho").abs()[0, :, :, 1:-1]
    template = p.amplitude[:, :, 1:-1]
    ratio = (amp / template.clamp_min(1e-6))[template > 1e-3 * template.max()]
    assert float(ratio.std() / ratio.mean()) < 1e-2


def test_start_image_phase_and_checkpoint_round_trip():
    ctx, p = _param(batch=1)
    img = p.images().detach()
    again = MacoParam.create(ctx, (48, 64), img)
    # the image's own phase redraws it, but for the zero and Nyquist columns, which irfft2 made Hermitian
    assert float((again.images().detach() - img).abs().mean()) < 0.05
    restored = MacoParam.from_tensors(ctx, (48, 64), p.tensors())
    assert torch.equal(restored.images(), p.images())
    assert PARAM_KINDS["maco"] is MacoParam


def test_maco_raises_a_channel_and_keeps_rgb(tiny_model):
    cfg = RenderConfig(
        param="maco", steps=12, lr=0.1, seed=0, optimizer="adam", normalize_grad=False, tv_weight=0.0, p_weight=0.0
    )
    log = []
    out = Render(tiny_model, Channel("conv3", 2), cfg, Start(size=(32, 32)), device="cpu").run(log.append)
    assert out.shape == (1, 3, 32, 32) and log[-1].score > log[0].score


def test_maco_refuses_alpha(tmp_path, tiny_cli):
    args = ["prefer", *tiny_cli, "--layer", "conv3", "--channel", 1, "--param", "maco", "--alpha"]
    assert_one_line_error(invoke([*args, "-o", tmp_path / "x.png"]), "--param maco draws RGB images")
