"""The researcher's API: reconstruct_image, invert_image, generate_image and their helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import smooth_rgb

from cnnvis.errors import InputError
from cnnvis.io.images import hwc_to_bchw
from cnnvis.models.capture import FeatureCapture
from cnnvis.recipes.metrics import feature_errors, pixel_correlation, ssim
from cnnvis.recipes.recon import generate_image, invert_image, receptive_field_mask, reconstruct_image, unit_mask


def _photo(side: int) -> np.ndarray:
    import cv2
    import skimage.data

    return cv2.resize(skimage.data.chelsea(), (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def _feats(model, img: np.ndarray, layer: str) -> np.ndarray:
    with FeatureCapture(model.module, [layer]) as cap, torch.no_grad():
        return cap(model.normalize(hwc_to_bchw(img)))[layer][0].numpy()


@pytest.fixture
def tiny_target(tiny_model):
    img = smooth_rgb(32, 32).astype(np.float32) / 255
    return img, {"conv3": _feats(tiny_model, img, "conv3")}


def test_reconstruct_returns_image_and_loss_per_iteration(tiny_model, tiny_target):
    _, feats = tiny_target
    img, losses = reconstruct_image(feats, tiny_model, steps=7)
    assert img.dtype == np.float32 and img.shape == (32, 32, 3)
    assert 0 <= img.min() and img.max() <= 1
    assert len(losses) == 7 and all(isinstance(v, float) for v in losses)


@pytest.mark.parametrize("opt", ["gd", "lbfgs", "adam"])
def test_every_optimizer_reduces_the_loss(tiny_model, tiny_target, opt):
    _, feats = tiny_target
    # conv3 is the tiny net's last layer, where Adam would default to the Fourier image: pixels here
    _, losses = reconstruct_image(feats, tiny_model, optimizer=opt, steps=15, tv_weight=0.0, param="pixel")
    assert losses[-1] < 0.5 * losses[0], losses


def test_the_top_layer_fourier_default_reduces_the_loss(tiny_model, tiny_target):
    _, feats = tiny_target
    _, losses = reconstruct_image(feats, tiny_model, steps=15)
    assert losses[-1] < 0.8 * losses[0], losses


def test_icnn_option_names_are_accepted(tiny_model, tiny_target):
    _, feats = tiny_target
    _, losses = reconstruct_image(
        feats,
        tiny_model,
        optimizer="gd",
        iter_n=5,
        lr_start=2.0,
        lr_end=1e-3,
        momentum_start=0.9,
        decay_start=0.01,
        image_blur=True,
        sigma_start=1.0,
        sigma_end=0.5,
        clip_extreme=True,
        e_pct_start=1,
    )
    assert len(losses) == 5
    with pytest.raises(InputError, match="unknown option 'iter_nn'; did you mean 'iter_n'"):
        reconstruct_image(feats, tiny_model, iter_nn=5)


def test_shape_mismatch_and_size(tiny_model, tiny_target):
    _, feats = tiny_target
    with pytest.raises(InputError, match=r"have shape \(16, 16, 16\) but the layer gives \(16, 24, 24\)"):
        reconstruct_image(feats, tiny_model, size=(48, 48), steps=1)


def test_masks_and_channels_flow_through(tiny_model, tiny_target):
    _, feats = tiny_target
    img, losses = reconstruct_image(
        feats, tiny_model, steps=3, channel={"conv3": [0, 3]}, feature_mask={"conv3": np.ones((16, 16))}
    )
    assert img.shape == (32, 32, 3) and len(losses) == 3


def test_inversion_from_an_early_layer_of_the_embedded_model(lite0):
    """Real weights: blocks.1 keeps most of the picture, so 60 Adam steps already correlate highly."""
    x = _photo(96)
    img, losses = invert_image(x, ["blocks.1"], lite0, steps=60)
    corr = pixel_correlation(hwc_to_bchw(img), hwc_to_bchw(x))
    assert corr > 0.8, corr
    assert losses[-1] < 0.2 * losses[0]
    fe = feature_errors(lite0, hwc_to_bchw(img), hwc_to_bchw(x), ["blocks.1"])["blocks.1"]
    assert fe < 0.3
    assert ssim(hwc_to_bchw(img), hwc_to_bchw(x)) > 0.3


def test_reference_inversion_equals_feature_inversion_on_one_tile(tiny_model, tiny_target):
    x, feats = tiny_target
    a, la = reconstruct_image(feats, tiny_model, steps=4, starts=1)
    b, lb = invert_image(x, ["conv3"], tiny_model, steps=4, starts=1)  # conv3 is last: one start, as the features
    assert np.allclose(a, b, atol=1e-5) and np.allclose(la, lb, rtol=1e-5)


def test_tiled_inversion_larger_than_the_model_input(tiny_model):
    x = smooth_rgb(48, 80).astype(np.float32) / 255  # input size 32: several tiles
    img, losses = invert_image(x, ["conv3"], tiny_model, steps=12, tile=32)
    assert img.shape == (48, 80, 3)
    assert losses[-1] < losses[0]


def test_generate_image_raises_the_unit(tiny_model):
    mask = unit_mask(tiny_model, "conv3", 2)
    assert mask.shape == (16, 16, 16) and mask.sum() == 1 and mask[2, 8, 8] == 1

    def act(img):
        with FeatureCapture(tiny_model.module, ["conv3"]) as cap, torch.no_grad():
            return float(cap(tiny_model.normalize(hwc_to_bchw(img)))["conv3"][0, 2, 8, 8])

    grey = act(np.full((32, 32, 3), 0.5, np.float32))
    img = generate_image(tiny_model, "conv3", mask, steps=20)
    assert img.shape == (32, 32, 3)
    assert act(img) > grey + 0.05  # with the default robustness transforms the unit moves about
    still = generate_image(tiny_model, "conv3", mask, steps=20, jitter=0, transform_scale=0.0, transform_rotate=0.0)
    assert act(still) > grey + 0.5


def test_receptive_field_mask_and_masked_generation(tiny_model):
    mask = unit_mask(tiny_model, "conv1", 0, x=10, y=12)
    rf = receptive_field_mask(tiny_model, "conv1", mask)
    ys, xs = np.nonzero(rf)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (11, 13, 9, 11)  # a 3x3 kernel
    img = generate_image(tiny_model, "conv1", mask, image_mask="rf", steps=5)
    outside = np.ones_like(rf, bool)
    outside[11:14, 9:12] = False
    assert np.allclose(img[outside], 0.5) and not np.allclose(img[~outside], 0.5)


def test_unit_mask_errors(tiny_model):
    with pytest.raises(InputError, match="channel 99 is out of range"):
        unit_mask(tiny_model, "conv3", 99)
    with pytest.raises(InputError, match="outside layer 'conv3'"):
        unit_mask(tiny_model, "conv3", 0, x=40, y=0)


def test_layer_dependent_defaults(lite0):
    from cnnvis.recipes.recon import _invert_defaults, layer_depth

    assert _invert_defaults([4.0], [0.2], {}) == {
        "optimizer": "lbfgs"
    }  # shallow: L-BFGS on the Fourier image (no blur)
    # from stride 8, L-BFGS jitters by 2 pixels (drawn once per step: one objective per line search)
    assert _invert_defaults([4.0, 16.0], [0.2, 0.5], {}) == {"optimizer": "lbfgs", "jitter": 2}
    assert _invert_defaults([16.0], [0.5], {"optimizer": "lbfgs"}) == {"jitter": 2}
    assert "jitter" not in _invert_defaults([16.0], [0.5], {"optimizer": "adam"})
    assert "blur_every" not in _invert_defaults([4.0], [0.2], {"optimizer": "adam"})
    assert _invert_defaults([4.0, 16.0], [0.2, 0.5], {"optimizer": "adam"})["blur_every"] == 4
    assert _invert_defaults([32.0], [0.9], {})["blur_every"] == 4  # deeper: Adam on pixels with the blur
    assert "blur_every" not in _invert_defaults([32.0], [0.9], {"optimizer": "lbfgs"})  # L-BFGS steps the Fourier image
    assert "blur_every" not in _invert_defaults([32.0], [0.5], {"param": "fft"})  # a blur needs pixels
    assert _invert_defaults([32.0], [0.97], {})["param"] == "fft"  # the last layers, with Adam
    assert "param" not in _invert_defaults([32.0], [0.97], {"optimizer": "gd"})
    depths = [layer_depth(lite0.module, n) for n in ("blocks.1", "blocks.5", "conv_head")]
    assert depths == sorted(depths) and depths[1] < 0.95 <= depths[2]


def test_the_deep_layers_of_the_embedded_model_invert_through_its_generator_by_default(lite0, tiny_model):
    """``prior="auto"`` (the default): the shipped generator from stride 32 (blocks.5, conv_head),
    pixels above it, on a model without a shipped generator, and when asked for (``None``)."""
    from cnnvis.params.generator import GeneratorStages
    from cnnvis.recipes.recon import image_render

    img = smooth_rgb(64, 64)

    def through_generator(layer, model=lite0, **kw):
        return isinstance(image_render(img, [layer], model, steps=2, **kw).stages, GeneratorStages)

    assert through_generator("conv_head") and through_generator("blocks.5")
    assert not through_generator("blocks.4") and not through_generator("conv_head", prior=None)
    assert not through_generator("conv3", model=tiny_model)
    with pytest.raises(InputError, match="'dgn'"):
        image_render(img, ["conv_head"], lite0, prior="dgn")


def _tiny_prior(**kw):
    from cnnvis.priors.dgn import DGNPrior
    from cnnvis.priors.generators.upconv import UpconvGenerator

    torch.manual_seed(0)
    g = UpconvGenerator(16, 2, latent_hw=(16, 16), width=8, min_width=4).eval()
    return DGNPrior(g, torch.full((16,), 3.0), encoder_layer="relu2", **kw)


def test_a_dgn_inversion_refines_pixels_with_the_layers_pixel_defaults(tiny_model):
    from cnnvis.recipes.recon import image_render

    photo = smooth_rgb(32, 32)
    r = image_render(photo, ["relu2"], tiny_model, prior=_tiny_prior(), steps=10)
    # half the steps on the latent (Adam, the DGN defaults), half on pixels: L-BFGS on the Fourier image at this stride
    assert r.cfg.steps == 5 and r.stages.refine.steps == 5 and r.total_steps == 10
    assert (r.cfg.optimizer, r.stages.refine.optimizer, r.stages.refine.param) == ("adam", "lbfgs", "fft")
    # a noise start: the latent starts as noise at natural codes' scale, not as the noise image's code
    assert r.stages.prior.init == "noise"
    assert image_render(photo, ["relu2"], tiny_model, prior=_tiny_prior(), steps=10, dgn_refine=0).stages.refine is None
    assert (
        image_render(photo, ["relu2"], tiny_model, prior=_tiny_prior(init="zeros"), steps=10).stages.prior.init
        == "zeros"
    )
    with pytest.raises(InputError, match="--dgn-refine"):
        image_render(photo, ["relu2"], tiny_model, prior=_tiny_prior(), dgn_refine=1.0)
    img, losses = invert_image(photo, ["relu2"], tiny_model, prior=_tiny_prior(), steps=10)
    assert len(losses) == 10 and losses[-1] < losses[0]


def test_an_inversion_adds_the_given_penalties_to_its_own(tiny_model):
    """A video frame's temporal loss reaches the render: its regularizer loss grows by the penalty."""
    from cnnvis.recipes.recon import image_render
    from cnnvis.regularize.penalties import TV

    photo = smooth_rgb(32, 32)
    regs = []
    for extra in ((), (TV(50.0),)):
        r = image_render(photo, ["relu2"], tiny_model, steps=1, optimizer="adam", penalties=extra)
        assert tuple(r.terms.penalties) == extra
        r.run(lambda p: regs.append(p.reg_loss))
    assert regs[1] > regs[0]
