"""Read target features from disk: .npz / .npy / .mat, keyed by layer name.

- ``.npz``: one array per layer; the key is the layer name (``np.savez(f, **{"blocks.3": a})``).
- ``.npy``: a single array, for the one layer named on the command line.
- ``.mat``: MATLAB variables (scipy.io); as MATLAB names cannot hold dots, a key ``blocks_3``
  also matches layer ``blocks.3``.

Pickled objects are never loaded (``allow_pickle=False``): a feature file cannot run code.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from cnnvis.errors import InputError

FEATURE_SUFFIXES = (".npz", ".npy", ".mat")


def _read(path: str) -> dict[str, np.ndarray] | np.ndarray:
    ext = os.path.splitext(path)[1].lower()
    if ext not in FEATURE_SUFFIXES:
        raise InputError(f"feature file '{path}' has an unknown type; use .npz, .npy or .mat")
    if not os.path.isfile(path):
        raise InputError(f"feature file '{path}' does not exist; check the path")
    try:
        if ext == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        if ext == ".npy":
            return np.load(path, allow_pickle=False)
        import scipy.io

        return {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    except InputError:
        raise
    except Exception as e:  # numpy / scipy raise many types for truncated or foreign files
        raise InputError(
            f"cannot read feature file '{path}' ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:120] if str(e) else 'corrupt'}); write it with numpy.savez or scipy.io.savemat"
        ) from None


def _match(key: str, known: Sequence[str]) -> str | None:
    if key in known:
        return key
    hits = [n for n in known if n.replace(".", "_") == key]
    return hits[0] if len(hits) == 1 else None


def load_features(
    path: str, layers: Sequence[str] = (), known_layers: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Layer name -> float32 array from ``path``.

    Args:
        layers: the layers to use (default: every key). A ``.npy`` file needs exactly one.
        known_layers: the model's layer names, to map MATLAB-style keys (``blocks_3``).
    """
    data = _read(path)
    keyed = not isinstance(data, np.ndarray)  # a .npy array has no key of its own
    if isinstance(data, np.ndarray):
        if len(layers) != 1:
            raise InputError(f"'{path}' holds one array without a layer name; name its layer with exactly one --layer")
        data = {layers[0]: data}
    if not data:
        raise InputError(f"feature file '{path}' holds no arrays; save one array per layer name")
    out: dict[str, tuple[str, np.ndarray]] = {}  # layer name -> (the key in the file, its array)
    for key, value in data.items():
        name = _match(key, known_layers) if known_layers is not None else key
        out[name or key] = (key, value)
    if layers:
        missing = [n for n in layers if n not in out]
        if missing:
            raise InputError(
                f"feature file '{path}' has no array for layer '{missing[0]}'; it has {', '.join(sorted(out))}"
            )
        out = {n: out[n] for n in layers}
    for name, (key, value) in out.items():
        _check_real(path, key if keyed else None, name, value)
    return {name: np.asarray(value, np.float32) for name, (_, value) in out.items()}


def _check_real(path: str, key: str | None, layer: str, value) -> None:
    """InputError unless ``value`` is an array of real numbers (signed/unsigned integers or floats):
    complex values would lose their imaginary part in the float32 cast, and booleans, strings,
    objects, records and dates are no features at all."""
    # dtype.kind: i/u integers, f floats; b bool, c complex, m/M time, O object, U/S text, V records
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        return
    dtype = str(value.dtype)[:40] if isinstance(value, np.ndarray) else type(value).__name__
    if key is None:
        where = f"the array for layer '{layer}'"
    else:
        where = f"key '{key}'" + (f" (layer '{layer}')" if layer != key else "")
    raise InputError(
        f"feature file '{path}': {where} holds {dtype} values, not real numbers; save real float arrays (e.g. float32)"
    )
