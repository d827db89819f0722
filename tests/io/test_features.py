"""Feature files: .npz, .npy, .mat; never pickles; clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from cnnvis.errors import InputError
from cnnvis.io.features import load_features


def test_npz_npy_and_mat_round_trip(tmp_path):
    a = np.random.default_rng(0).normal(size=(4, 3, 3)).astype(np.float32)
    np.savez(tmp_path / "f.npz", **{"blocks.1": a, "conv_head": a[:2]})
    got = load_features(str(tmp_path / "f.npz"))
    assert set(got) == {"blocks.1", "conv_head"} and np.array_equal(got["blocks.1"], a)
    assert list(load_features(str(tmp_path / "f.npz"), ["conv_head"])) == ["conv_head"]
    np.save(tmp_path / "f.npy", a)
    assert np.array_equal(load_features(str(tmp_path / "f.npy"), ["blocks.1"])["blocks.1"], a)
    scipy.io.savemat(tmp_path / "f.mat", {"blocks_1": a})
    got = load_features(str(tmp_path / "f.mat"), known_layers=["blocks.1", "conv_head"])
    assert np.allclose(got["blocks.1"], a)


def test_bad_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_features(str(tmp_path / "none.npz"))
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputError, match="cannot read feature file"):
        load_features(str(tmp_path / "bad.npz"))
    with pytest.raises(InputError, match="unknown type"):
        load_features(str(tmp_path / "f.txt"))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="cannot read"):
        load_features(str(tmp_path / "obj.npy"), ["a"])
    np.save(tmp_path / "one.npy", np.ones(3))
    with pytest.raises(InputError, match="exactly one --layer"):
        load_features(str(tmp_path / "one.npy"))
    np.savez(tmp_path / "g.npz", a=np.ones(3))
    with pytest.raises(InputError, match="no array for layer 'b'"):
        load_features(str(tmp_path / "g.npz"), ["b"])
