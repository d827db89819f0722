"""Generator files: round trips, provenance, and the bad files a user can hand us."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnvis.errors import InputError
from cnnvis.priors.generators.files import load_generator, read_latent_bound, save_generator
from cnnvis.priors.generators.upconv import UpconvGenerator


def _gen(width=8):
    torch.manual_seed(1)
    return UpconvGenerator(5, 4, latent_hw=(2, 3), width=width, min_width=4)


@pytest.mark.parametrize("half", [False, True])
def test_round_trip(tmp_path, half):
    g = _gen()
    path = str(tmp_path / "g.pt")
    upper = torch.arange(1.0, 6.0)
    save_generator(path, g, "efficientnet-lite0", "bn2", upper, {"steps": 7}, half=half)
    gf = load_generator(path)
    assert (gf.model, gf.layer, gf.info["steps"]) == ("efficientnet-lite0", "bn2", 7)
    assert torch.equal(gf.latent_upper, upper)
    assert not any(p.requires_grad for p in gf.generator.parameters())
    z = torch.rand(1, 5, 2, 3)
    want = g(z)
    got = gf.generator(z)
    assert got.dtype == torch.float32
    if half:
        assert torch.allclose(got, want, atol=2e-2) and not torch.equal(got, want)
    else:
        assert torch.equal(got, want)


def test_plain_state_dict_of_unknown_architecture_is_refused(tmp_path):
    path = str(tmp_path / "sd.pt")
    torch.save(_gen().state_dict(), path)
    with pytest.raises(InputError, match="matches no generator architecture"):
        load_generator(path)


def test_weights_of_another_shape_name_the_key(tmp_path):
    path = str(tmp_path / "g.pt")
    save_generator(path, _gen(), None, None)
    obj = torch.load(path, weights_only=True)
    obj["config"]["width"] = 16  # the file now claims a wider generator than its weights
    torch.save(obj, path)
    with pytest.raises(
        InputError,
        match=r"does not match the upconv architecture \('net.0.weight' is \(8, 5, 1, 1\), expected \(16, 5, 1, 1\)\)",
    ):
        load_generator(path)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(InputError, match="generator file not found"):
        load_generator(str(tmp_path / "nope.pt"))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file at all")
    with pytest.raises(InputError, match="cannot read generator file"):
        load_generator(str(bad))
    good = tmp_path / "g.pt"
    save_generator(str(good), _gen(), None, None)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(InputError, match="cannot read generator file"):
        load_generator(str(cut))


def test_unknown_architecture_name(tmp_path):
    path = str(tmp_path / "g.pt")
    save_generator(path, _gen(), None, None)
    obj = torch.load(path, weights_only=True)
    obj["arch"] = "stylegan9"
    torch.save(obj, path)
    with pytest.raises(InputError, match="unknown architecture 'stylegan9'"):
        load_generator(path)


def test_latent_bound_files(tmp_path):
    g = _gen()
    txt = tmp_path / "b.txt"
    txt.write_text("\n".join(str(v) for v in [1, 2, 3, 4, 5]))
    assert torch.equal(read_latent_bound(str(txt), g), torch.tensor([1.0, 2, 3, 4, 5]))
    npy = tmp_path / "b.npy"
    np.save(npy, np.full(5, 2.5, np.float32))
    assert torch.equal(read_latent_bound(str(npy), g), torch.full((5,), 2.5))
    short = tmp_path / "short.txt"
    short.write_text("1 2 3")
    with pytest.raises(InputError, match="has 3 values but the upconv generator's latent has 5 channels"):
        read_latent_bound(str(short), g)
    neg = tmp_path / "neg.txt"
    neg.write_text("1 2 -3 4 5")
    with pytest.raises(InputError, match="negative or non-finite"):
        read_latent_bound(str(neg), g)
    junk = tmp_path / "junk.txt"
    junk.write_text("a b c")
    with pytest.raises(InputError, match="cannot read latent bound file"):
        read_latent_bound(str(junk), g)
    with pytest.raises(InputError, match="latent bound file not found"):
        read_latent_bound(str(tmp_path / "none.txt"), g)
