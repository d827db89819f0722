"""The DGN prior in the pipeline: latents, bounds, inits, sizes, and every optimizer."""

from __future__ import annotations

import math

import pytest
import torch

from cnnvis.canvas.start import Start
from cnnvis.config import RenderConfig
from cnnvis.errors import InputError
from cnnvis.objectives.activation import Channel
from cnnvis.params.generator import GeneratorStages
from cnnvis.pipeline.loop import Render
from cnnvis.priors.dgn import DGNPrior, GeneratorImage, encode, initial_latent, load_prior, prior_of
from cnnvis.priors.generators.base import Generator
from cnnvis.priors.generators.files import save_generator
from cnnvis.priors.generators.upconv import UpconvGenerator
from cnnvis.priors.spec import PriorSpec


def _spatial(upper=None, **kw) -> DGNPrior:
    torch.manual_seed(0)
    g = UpconvGenerator(16, 2, latent_hw=(16, 16), width=8, min_width=4).eval()
    for p in g.parameters():
        p.requires_grad_(False)
    # a random stride-2 generator draws mostly its own checkerboard: keep it, or little is left to optimize
    kw.setdefault("lattice", "keep")
    return DGNPrior(g, upper, encoder_layer="relu2", **kw)


class VectorGen(Generator):
    """A tiny fc generator: (B, 6) -> (B, 3, 20, 20) in Caffe's BGR-minus-mean space."""

    arch = "test-vector"
    latent_shape = (6,)
    output_size = (20, 20)
    bgr_mean = (104.0, 117.0, 123.0)

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(6, 3 * 20 * 20)

    def config(self):
        return {}

    def forward(self, z):
        return 60 * torch.tanh(self.fc(z)).view(-1, 3, 20, 20)


def test_spatial_latent_grows_with_the_canvas_and_is_cropped():
    p = _spatial()
    assert p.latent_shape((32, 32)) == (1, 16, 16, 16)
    assert p.latent_shape((33, 40)) == (1, 16, 17, 20)
    smooth = torch.nn.functional.interpolate(
        torch.rand(1, 16, 3, 4), size=(17, 20), mode="bilinear", align_corners=False
    )
    gi = GeneratorImage(p, (33, 40), smooth)
    img = gi.image()
    assert img.shape == (1, 3, 33, 40) and img.requires_grad
    assert 0 <= float(img.detach().min()) and float(img.detach().max()) <= 1
    # resizing keeps the composition: the latent map is resized, not regenerated
    big = gi.resized((66, 80))
    assert big.z.shape == (1, 16, 33, 40)
    small_again = torch.nn.functional.interpolate(big.z, size=(17, 20), mode="bilinear", align_corners=False)
    assert torch.allclose(small_again, gi.z.detach(), atol=0.05)


def test_latent_bounds_clip_to_zero_and_upper():
    upper = torch.linspace(0.5, 2.0, 16)
    p = _spatial(upper)
    gi = GeneratorImage(p, (32, 32), torch.randn(1, 16, 16, 16) * 5)
    assert float(gi.z.detach().min()) >= 0
    assert torch.all(gi.z.amax(dim=(0, 2, 3)) <= upper + 1e-6)
    assert torch.allclose(gi.z.amax(dim=(0, 2, 3)), upper)  # the bound is reached: clipping happened


def test_explicit_lower_bounds():
    g = _spatial().generator
    z = torch.randn(1, 16, 16, 16) * 5
    signed = GeneratorImage(DGNPrior(g, torch.full((16,), 2.0), lower=float("-inf")), (32, 32), z)
    assert float(signed.z.detach().min()) < -1 and float(signed.z.detach().max()) <= 2.0  # fc8-style: no floor
    low = torch.linspace(-1.0, 0.5, 16)
    floored = GeneratorImage(DGNPrior(g, lower=low), (32, 32), z)  # a floor and no ceiling
    assert torch.allclose(floored.z.detach().amin(dim=(0, 2, 3)), low) and float(floored.z.detach().max()) > 5
    free = GeneratorImage(DGNPrior(g), (32, 32), z)
    assert torch.equal(free.z.detach(), z)  # no bounds: untouched


def test_vector_generator_crop_resize_and_colour_space():
    g = VectorGen()
    z = torch.randn(1, 6)
    raw = g(z)
    rgb = g.to_rgb(raw)
    assert torch.allclose(g.from_rgb(rgb), raw, atol=1e-4)
    # BGR minus mean: the red output channel is the last raw channel
    assert torch.allclose(rgb[:, 0], (raw[:, 2] + 123.0) / 255.0)
    crop = GeneratorImage(DGNPrior(g, fit="crop"), (16, 16), z).image()
    full = g.image(z)
    assert torch.equal(crop, full[..., 2:18, 2:18])  # icnn's centre crop (227 of 256)
    grown = GeneratorImage(DGNPrior(g, fit="crop"), (30, 30), z).image()
    assert grown.shape[-2:] == (30, 30)  # larger canvas: resized
    resized = GeneratorImage(DGNPrior(g, fit="resize"), (16, 16), z).image()
    assert resized.shape[-2:] == (16, 16) and not torch.equal(resized, crop)
    assert DGNPrior(g).side_limit() == 20 and _spatial().side_limit() == 1024


def test_initial_latents(tiny_model):
    p = _spatial(torch.full((16,), 3.0))
    gen = torch.Generator().manual_seed(0)
    assert (
        torch.count_nonzero(initial_latent(DGNPrior(p.generator, init="zeros"), (32, 32), tiny_model, None, gen, "cpu"))
        == 0
    )
    noise = initial_latent(p, (32, 32), tiny_model, None, gen, "cpu")
    assert noise.shape == (1, 16, 16, 16) and float(noise.min()) >= 0 and 0.5 < float(noise.std()) < 1.5
    img = torch.rand(1, 3, 32, 32)
    enc = initial_latent(p, (32, 32), tiny_model, img, gen, "cpu")  # auto with an image: its encoding
    with torch.no_grad():
        want = torch.relu(
            tiny_model.module.conv2(tiny_model.module.relu1(tiny_model.module.conv1(tiny_model.normalize(img))))
        )
    assert torch.allclose(enc, want, atol=1e-5)
    with pytest.raises(InputError, match="needs a start image to encode"):
        initial_latent(
            DGNPrior(p.generator, init="image", encoder_layer="relu2"), (32, 32), tiny_model, None, gen, "cpu"
        )
    with pytest.raises(InputError, match="does not name one"):
        encode(DGNPrior(p.generator), tiny_model, img, (32, 32))
    with pytest.raises(InputError, match="gives features"):
        encode(DGNPrior(p.generator, encoder_layer="conv1"), tiny_model, img, (32, 32))
    given = torch.rand(16, 8, 8)  # a latent of another grid size is resized to the canvas's
    assert initial_latent(DGNPrior(p.generator, init=given), (32, 32), tiny_model, None, gen, "cpu").shape == (
        1,
        16,
        16,
        16,
    )
    with pytest.raises(InputError, match="needs"):
        initial_latent(DGNPrior(p.generator, init=torch.rand(1, 5)), (32, 32), tiny_model, None, gen, "cpu")


def test_bad_prior_settings():
    g = _spatial().generator
    with pytest.raises(InputError, match="unknown latent init 'ones'"):
        DGNPrior(g, init="ones")
    with pytest.raises(InputError, match="unknown generator fit"):
        DGNPrior(g, fit="stretch")
    with pytest.raises(InputError, match="must be positive"):
        DGNPrior(g, max_side=0)


def _score_gain(tiny_model, prior, **cfg_kw):
    cfg = RenderConfig(steps=12, tile=32, shift=False, tv_weight=0.0, **cfg_kw)
    obj = Channel("conv3", 3)
    r = Render(tiny_model, obj, cfg, Start(size=(32, 32)), stages=GeneratorStages(prior))
    scores = []
    final = r.run(lambda p: scores.append(p.score))
    return scores, final, r


@pytest.mark.parametrize("opt,lr", [("adam", 0.1), ("gd", 1.0), ("lbfgs", 1.0), ("rmsprop", 0.05)])
def test_every_optimizer_raises_the_objective_through_the_generator(tiny_model, opt, lr):
    upper = torch.full((16,), 4.0)
    prior = _spatial(upper, init="zeros")
    with torch.no_grad():
        prior.generator.net[-1].weight.mul_(10)  # a random generator barely depends on z; make it
    scores, final, r = _score_gain(tiny_model, prior, optimizer=opt, lr=lr)
    assert scores[-1] > scores[0] + 0.15 * abs(scores[0]), scores
    assert all(map(math.isfinite, scores))
    z = r.param.latent()
    assert float(z.min()) >= 0 and float(z.max()) <= 4.0 + 1e-6  # bounds held after every step
    # the canvas is exactly the generator's image of the final latent
    assert torch.allclose(final, r.stages.prior.generator.image(z)[..., :32, :32], atol=1e-6)


def test_image_encoding_when_the_objective_stops_before_the_encoder_layer(tiny_model):
    """The objective's hooks cut the forward pass at conv1; the encoder layer relu2 comes later."""
    from cnnvis.objectives.activation import Dream

    img = torch.rand(1, 3, 32, 32)
    r = Render(
        tiny_model,
        Dream("conv1"),
        RenderConfig(steps=1, tile=32, shift=False),
        Start(init=img),
        stages=GeneratorStages(_spatial(init="image")),
    )
    r.run()
    with torch.no_grad():
        want = torch.relu(tiny_model.module.conv2(torch.relu(tiny_model.module.conv1(tiny_model.normalize(img)))))
    assert r.param.latent().shape == want.shape and not torch.equal(
        r.param.latent(), want
    )  # encoded, then stepped once
    assert float((r.param.latent() - want).abs().mean()) < 0.1 * float(want.abs().mean()) + 0.05


def test_sizes_past_max_side_refine_pixels_from_the_generator_image(tiny_model):
    prior = _spatial(init="zeros", max_side=32)
    cfg = RenderConfig(
        steps=3,
        tile=32,
        shift=False,
        initial_size="32x32",
        final_size="48x48",
        num_sizes=2,
        latent_lr=0.05,
        optimizer="adam",
        lr=0.01,
    )
    r = Render(tiny_model, Channel("conv3", 3), cfg, Start(size=(32, 32)), stages=GeneratorStages(prior))
    kinds, last, first = [], {}, {}

    def cb(p):
        kinds.append((p.size, r.param.kind))
        last[p.size] = p.image()
        first.setdefault(p.size, p.image())

    r.run(cb)
    assert kinds[0] == ((32, 32), "generator") and kinds[-1] == ((48, 48), "pixel")
    assert r.param.latent() is None
    # the pixel stage starts from the generator's image, upsampled: one step later it is still close
    from cnnvis.canvas.sizes import resize

    start = resize(last[(32, 32)], (48, 48))
    assert float((first[(48, 48)] - start).abs().mean()) < 0.05


def test_load_prior_from_files_and_flags(tmp_path, tiny_model):
    p = _spatial()
    path = str(tmp_path / "g.pt")
    save_generator(path, p.generator, "tiny", "relu2", torch.full((16,), 2.0))
    prior = load_prior(tiny_model, path)
    assert prior.encoder_layer == "relu2" and torch.equal(prior.upper, torch.full((16,), 2.0))
    assert load_prior(tiny_model, path, latent_bound="none").upper is None
    bound = tmp_path / "b.txt"
    bound.write_text(" ".join(["1.5"] * 16))
    assert torch.equal(load_prior(tiny_model, path, latent_bound=str(bound)).upper, torch.full((16,), 1.5))
    bad = tmp_path / "b4.txt"
    bad.write_text("1 2 3 4")
    with pytest.raises(InputError, match="has 4 values"):
        load_prior(tiny_model, path, latent_bound=str(bad))
    # no shipped generator for this model
    with pytest.raises(InputError, match="no shipped generator for tiny"):
        load_prior(tiny_model, None)
    assert prior_of(PriorSpec(prior="none"), tiny_model, "cpu") is None
    assert prior_of(PriorSpec(generator=str(path)), tiny_model, "cpu") is not None  # --generator implies dgn
    with pytest.raises(InputError, match="add --prior dgn"):
        prior_of(PriorSpec(prior="none", latent_bound=str(bound)), tiny_model, "cpu")
    with pytest.raises(InputError, match="--latent-init"):
        PriorSpec(prior="dgn", latent_init="random")  # the spec checks its declared choices
    # another model cannot encode into this generator's latent
    other = type(tiny_model)(**{**tiny_model.__dict__, "name": "other"})
    assert load_prior(other, path).encoder_layer is None
    with pytest.raises(InputError, match="needs tiny"):
        load_prior(other, path, init="image")


def test_shipped_demo_generator_encodes_and_generates(lite0):
    prior = load_prior(lite0)
    g = prior.generator
    assert (
        g.arch == "upconv"
        and g.latent_shape == (672, 14, 14)
        and g.stride == 16
        and prior.encoder_layer == "blocks.5.0.bn1"
    )
    assert prior.upper is not None and prior.upper.shape == (672,) and float(prior.upper.min()) >= 0
    from cnnvis.io.images import bundled_image_path, hwc_to_bchw, read_image

    img = torch.nn.functional.interpolate(hwc_to_bchw(read_image(bundled_image_path())), size=(224, 224), mode="area")
    z = encode(prior, lite0, img, (224, 224))
    with torch.no_grad():
        rec = g.image(z)
    assert rec.shape == (1, 3, 224, 224)
    # the demo generator inverts blocks.5.0.bn1 of the bundled photo (a tuning photo, in its training set)
    corr = torch.corrcoef(torch.stack([rec.flatten(), img.flatten()]))[0, 1]
    assert float(corr) > 0.3, float(corr)


def test_prior_dgn_works_offline_with_the_shipped_generator(tmp_path):
    """``--prior dgn`` with no --generator: the demo generator, on the embedded model."""
    import imageio.v3 as iio
    from conftest import invoke

    out = tmp_path / "p.png"
    res = invoke(
        [
            "prefer",
            "--layer",
            "blocks.4",
            "--channel",
            5,
            "--size",
            "64x96",
            "--prior",
            "dgn",
            "--steps",
            2,
            "-q",
            "--out",
            out,
        ]
    )
    assert res.exit_code == 0, (res.output, res.exception)
    assert iio.imread(out).shape == (64, 96, 3)


def _refined_render(tiny_model, refine_steps=3):
    prior = _spatial(init="zeros")
    cfg = RenderConfig(steps=2, tile=32, shift=False, latent_lr=0.05, optimizer="adam", lr=0.01)
    refine = RenderConfig(
        steps=refine_steps, tile=32, shift=False, optimizer="lbfgs", param="fft", lr=1.0, tv_weight=0.3, jitter=2
    )
    return Render(tiny_model, Channel("conv3", 3), cfg, Start(size=(32, 32)), stages=GeneratorStages(prior, refine))


def test_a_refinement_stage_optimizes_pixels_from_the_generator_image_under_its_own_settings(tiny_model):
    r = _refined_render(tiny_model)
    assert r.plan == [(32, 32), (32, 32)] and r.total_steps == 5
    seen, last = [], {}

    def cb(p):
        seen.append(
            (
                p.step,
                p.total,
                p.size_index,
                r.param.kind,
                type(r.stepper).__name__,
                r.cfg.steps,
                repr(r.gradient.transforms[0]),
            )
        )
        if p.size_index == 0:
            last[0] = p.image()  # the generator's image after its last step
        else:
            last.setdefault(1, p.image())  # the first refined image

    r.run(cb)
    assert [s[0] for s in seen] == [1, 2, 3, 4, 5] and {s[1] for s in seen} == {5}
    assert [s[3] for s in seen] == ["generator"] * 2 + ["fft"] * 3
    assert [s[4] for s in seen] == ["FirstOrder"] * 2 + ["LBFGS"] * 3 and seen[-1][5] == 3
    assert [s[6] for s in seen] == ["Jitter(0)"] * 2 + ["Jitter(2)"] * 3  # the refinement's own transforms
    # the pixel stage starts from the generator's last image: one L-BFGS step later it is still near it
    assert float((last[1] - last[0]).abs().mean()) < 0.05
    assert r.param.latent() is None


def test_a_refined_run_resumes_bit_for_bit_from_either_stage(tiny_model):
    straight = _refined_render(tiny_model).run()
    for stop_after in (1, 3):
        r = _refined_render(tiny_model)
        saved = {}

        class Stop(Exception):
            pass

        def cb(p, r=r, stop_after=stop_after):
            if p.step == stop_after:
                import copy

                saved["ck"] = copy.deepcopy(r.checkpoint())
                raise Stop

        with pytest.raises(Stop):
            r.run(cb)
        again = _refined_render(tiny_model).run(resume=saved["ck"])
        assert torch.equal(again, straight), stop_after


def test_a_refinement_its_kind_cannot_do_is_refused_before_the_run(tiny_model):
    """The refinement starts from the generator's image: a kind that cannot start from one is refused."""
    stages = GeneratorStages(_spatial(init="zeros"), RenderConfig(steps=1, param="cppn"))
    with pytest.raises(InputError, match="--param cppn"):
        Render(tiny_model, Channel("conv3", 3), RenderConfig(steps=1, tile=32), Start(size=(32, 32)), stages=stages)
