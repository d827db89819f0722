"""Removing a spatial generator's lattice (issue 24): the pattern goes, the picture stays."""

from __future__ import annotations

import pytest
import torch

from cnnvis.io.images import bundled_image_path, hwc_to_bchw, read_image
from cnnvis.priors.dgn import DGNPrior, encode, load_prior
from cnnvis.priors.lattice import balance_phase_energy, lattice, remove_generator_lattice, remove_lattice
from cnnvis.recipes.metrics import grid_ratio, lattice_ratios, pixel_correlation


def _photo(side: int = 224) -> torch.Tensor:
    img = hwc_to_bchw(read_image(bundled_image_path()))
    return torch.nn.functional.interpolate(img, size=(side, side), mode="area")


def _pattern(period: int, amplitude: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(1, 3, period, period, generator=g)
    return amplitude * (p - p.mean(dim=(2, 3), keepdim=True)) / p.std()


def test_a_pattern_repeated_every_stride_pixels_is_removed_and_the_photo_stays():
    photo = _photo()
    stamped = photo + _pattern(16, 0.04).repeat(1, 1, 14, 14)
    before, after = lattice_ratios(stamped.clamp(0, 1)), lattice_ratios(remove_generator_lattice(stamped, 16))
    assert max(before.values()) > 3, before  # the stamp is a lattice the metric sees
    assert max(after.values()) <= 1.5, after
    cleaned = remove_generator_lattice(stamped, 16)
    assert float((cleaned - photo).abs().mean()) < 0.3 * float((stamped - photo).abs().mean())
    assert pixel_correlation(remove_generator_lattice(photo, 16), photo) > 0.99  # a photo has none to lose


def test_a_pattern_whose_strength_follows_the_content_is_removed_locally():
    """The estimate is local: a pattern twice as strong on the right half goes on both halves,
    better than one average over the whole image would remove it."""
    photo = _photo(256)
    strength = torch.ones(1, 1, 256, 256)
    strength[..., 128:] = 2.0
    stamped = photo + strength * _pattern(16, 0.03).repeat(1, 1, 16, 16)
    local, whole = remove_lattice(stamped, 16), remove_lattice(stamped, 16, float("inf"))

    def left_over(cleaned, half):  # away from the borders and the change
        return float((cleaned - photo)[..., 16:240, half].abs().mean()) / float(
            (stamped - photo)[..., 16:240, half].abs().mean()
        )

    for half in (slice(16, 112), slice(144, 240)):
        assert left_over(local, half) < 0.4 and left_over(local, half) < 0.8 * left_over(whole, half)


def test_smooth_content_is_not_taken_for_a_pattern():
    """Only fine detail enters the estimate: a steep ramp (an eighth of the range per block) is not
    turned into a staircase."""
    ramp = torch.linspace(0, 1, 128).view(1, 1, 1, 128).expand(1, 3, 128, 128).clone()
    change = (remove_generator_lattice(ramp, 16) - ramp).abs()
    assert float(change[..., 16:-16].max()) < 1 / 255, float(change.max())
    assert float(lattice(ramp, 16).abs().mean()) < 0.5 / 255


def test_detail_drawn_stronger_at_some_phases_is_balanced():
    """A grid no subtraction removes: the photo's fine detail 1.8 times as strong in every 16th
    column and row. Balancing the phases' energy brings the grid ratio back near the photo's own."""
    photo = _photo()
    detail = photo - torch.nn.functional.avg_pool2d(photo, 3, 1, 1, count_include_pad=False)
    gridded = photo.clone()
    gridded[..., ::16, :] += 0.8 * detail[..., ::16, :]
    gridded[..., :, ::16] += 0.8 * detail[..., :, ::16]
    before, after, own = (
        max(grid_ratio(x.clamp(0, 1), 16)) for x in (gridded, balance_phase_energy(gridded, 16), photo)
    )
    assert before > own + 0.5, (before, own)
    assert after < own + 0.3, (after, own)
    assert pixel_correlation(balance_phase_energy(photo, 16), photo) > 0.99


def test_the_image_must_be_whole_blocks():
    with pytest.raises(ValueError, match="whole blocks of 16"):
        lattice(torch.zeros(1, 3, 40, 48), 16)


def test_the_shipped_generator_draws_no_lattice_through_the_prior(lite0):
    """The demo generator's drawing of a photo from its own features peaks at 2-16 px (its
    transposed convolutions); the prior's image does not, and is no further from the photo."""
    photo = _photo()
    keep, remove = load_prior(lite0, lattice="keep"), load_prior(lite0)
    z = encode(remove, lite0, photo, (224, 224))
    with torch.no_grad():
        raw, clean = keep.draw(z), remove.draw(z)
    assert torch.equal(raw, keep.generator.image(z))
    assert max(lattice_ratios(raw).values()) > 5
    assert max(lattice_ratios(clean).values()) <= 1.5, lattice_ratios(clean)
    assert pixel_correlation(clean, photo) >= pixel_correlation(raw, photo) - 0.005
    assert float(clean.min()) >= 0 and float(clean.max()) <= 1


def test_the_gradient_reaches_the_latent_through_the_removal(lite0):
    prior = load_prior(lite0)
    z = torch.rand(1, *prior.generator.latent_shape[:1], 2, 2, requires_grad=True)
    prior.draw(z).mean().backward()
    assert z.grad is not None and float(z.grad.abs().sum()) > 0


def test_an_unknown_lattice_mode_is_refused(lite0):
    from cnnvis.errors import InputError

    with pytest.raises(InputError, match="--dgn-lattice 'blur'"):
        DGNPrior(load_prior(lite0).generator, lattice="blur")


def test_the_run_records_the_removal_and_an_older_run_replays_with_the_lattice(tmp_path):
    """A manifest from before --dgn-lattice drew through the raw generator: replay fills in
    ``keep`` and matches it bit for bit; today's manifest records ``remove``."""
    import json

    from conftest import invoke

    from cnnvis.io.manifest import read_manifest, sidecar_path

    base = ["prefer", "--layer", "blocks.4", "--channel", 5, "--size", "32x48", "--prior", "dgn", "--steps", 2, "-q"]
    new, old = tmp_path / "new.png", tmp_path / "old.jpg"  # a JPEG keeps its manifest only beside it
    for out, extra in ((new, []), (old, ["--dgn-lattice", "keep"])):
        res = invoke([*base, *extra, "--out", out])
        assert res.exit_code == 0, (res.output, res.exception)
    assert read_manifest(str(new))["params"]["dgn_lattice"] == "remove"
    with open(sidecar_path(str(old))) as f:
        m = json.load(f)
    del m["params"]["dgn_lattice"]
    with open(sidecar_path(str(old)), "w") as f:
        json.dump(m, f)
    res = invoke(["replay", old, "--check"])
    assert res.exit_code == 0 and "bit for bit" in res.output, res.output
