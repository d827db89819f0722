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


@pytest.mark.parametrize(
    "value, dtype",
    [
        (np.array([1 + 2j, 3 - 1j]), "complex128"),
        (np.array([True, False]), "bool"),
        (np.array(["relu", "conv"]), "<U4"),
        (np.array([1, 2], dtype="timedelta64[s]"), "timedelta64[s]"),
    ],
)
def test_npz_of_a_type_that_is_no_real_number_is_refused_naming_file_key_and_dtype(tmp_path, value, dtype):
    path = str(tmp_path / "bad_dtype.npz")
    np.savez(path, **{"blocks.1": value})
    with pytest.raises(InputError) as e:
        load_features(path)
    msg = str(e.value)
    assert "\n" not in msg and path in msg and "'blocks.1'" in msg and dtype in msg and "save real float arrays" in msg


def test_npy_of_complex_values_is_refused_not_cast(tmp_path):
    path = str(tmp_path / "c.npy")
    np.save(path, np.full((2, 3), 1 + 1j, np.complex64))
    with pytest.raises(InputError, match=r"the array for layer 'conv1' holds complex64 values"):
        load_features(path, ["conv1"])


def test_mat_complex_text_and_cell_variables_are_refused_and_named(tmp_path):
    path = str(tmp_path / "m.mat")
    cells = np.array([np.ones(2), "x"], dtype=object)
    scipy.io.savemat(path, {"blocks_1": np.array([1 + 1j, 2]), "note": "a string", "cells": cells, "ok": np.ones(4)})
    with pytest.raises(InputError, match=r"key 'blocks_1' \(layer 'blocks.1'\) holds complex128 values"):
        load_features(path, ["blocks.1"], known_layers=["blocks.1"])
    with pytest.raises(InputError, match=r"key 'note' holds <U8 values"):
        load_features(path, ["note"])
    with pytest.raises(InputError, match=r"key 'cells' holds object values"):
        load_features(path, ["cells"])
    assert load_features(path, ["ok"])["ok"].dtype == np.float32  # other variables do not matter when unused


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int64, np.float16, np.float64])
def test_integer_and_float_arrays_stay_accepted(tmp_path, dtype):
    a = (np.arange(12) % 7).astype(dtype).reshape(3, 4)
    np.savez(tmp_path / "f.npz", layer=a)
    got = load_features(str(tmp_path / "f.npz"))["layer"]
    assert got.dtype == np.float32 and np.array_equal(got, a.astype(np.float32))
