"""Generator files: one ``torch.save`` dict holding the architecture, its weights and its provenance.

Format (loadable with ``torch.load(weights_only=True)``)::

    {"cnnvis_generator": 1, "arch": "upconv", "config": {...constructor kwargs...},
     "state_dict": {...}, "model": "efficientnet-lite0", "layer": "bn2",
     "latent_upper": Tensor (C,) or None, "info": {...how it was made...}}

``model`` and ``layer`` name the network and layer whose features the generator inverts: that
layer is the generator's encoder (an image's features there are its latent code). A plain state
dict of one of the DeePSiM architectures is accepted too; its architecture is recognized from
its keys and shapes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch

from cnnvis.errors import InputError
from cnnvis.priors.generators.base import Generator
from cnnvis.priors.generators.upconv import UpconvGenerator

FORMAT_KEY = "cnnvis_generator"


def architectures() -> dict[str, type]:
    """Architecture name -> class (constructed with the file's ``config``)."""
    archs: dict[str, type] = {"upconv": UpconvGenerator}
    from cnnvis.priors.generators.deepsim import DEEPSIM_ARCHS

    archs.update(DEEPSIM_ARCHS)
    return archs


@dataclass
class GeneratorFile:
    """A loaded generator with its provenance.

    Attributes:
        generator: the network, eval mode, parameters frozen, float32.
        model, layer: what it inverts (``None`` when unknown, e.g. a bare state dict).
        latent_upper: (C,) upper bound of each latent channel, or ``None``.
        info: free-form training record (images, steps, losses, time).
        path: where it was read from.
    """

    generator: Generator
    model: str | None = None
    layer: str | None = None
    latent_upper: torch.Tensor | None = None
    info: dict = field(default_factory=dict)
    path: str = ""


def save_generator(
    path: str,
    gen: Generator,
    model: str | None,
    layer: str | None,
    latent_upper: torch.Tensor | None = None,
    info: dict | None = None,
    half: bool = False,
) -> None:
    """Write ``gen`` atomically to ``path``; ``half`` stores the weights as float16 (half the size)."""
    state = {
        k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu())
        for k, v in gen.state_dict().items()
    }
    obj = {
        FORMAT_KEY: 1,
        "arch": gen.arch,
        "config": gen.config(),
        "state_dict": state,
        "model": model,
        "layer": layer,
        "latent_upper": None if latent_upper is None else latent_upper.detach().float().cpu(),
        "info": info or {},
    }
    from cnnvis.io.files import save_torch

    save_torch(path, obj)


def _read(path: str) -> dict:
    from cnnvis.io.files import load_torch

    return load_torch(path, "generator file", "pass a file written by cnnvis train-generator or cnnvis convert-caffe")


def _guess_arch(state: dict, path: str) -> tuple[str, dict]:
    """The DeePSiM architecture whose state-dict keys and shapes ``state`` has exactly."""
    for name, cls in architectures().items():
        if name == "upconv":
            continue
        ref = cls().state_dict()
        if ref.keys() == state.keys() and all(ref[k].shape == state[k].shape for k in ref):
            return name, {}
    raise InputError(
        f"the state dict in '{path}' matches no generator architecture ({', '.join(architectures())}); "
        "convert Caffe generators with cnnvis convert-caffe --generator"
    )


def load_generator(path: str, device: torch.device | str = "cpu") -> GeneratorFile:
    """Read a generator file; raise :class:`InputError` when it does not match its architecture."""
    obj = _read(path)
    if not isinstance(obj, dict):
        raise InputError(
            f"'{path}' holds a {type(obj).__name__}, not a generator; pass a file written by cnnvis train-generator"
        )
    if FORMAT_KEY in obj:
        arch, config, state = obj.get("arch"), obj.get("config") or {}, obj.get("state_dict")
    elif obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = obj
        arch, config = _guess_arch(state, path)
    else:
        raise InputError(
            f"'{path}' is not a generator file; pass a file written by cnnvis train-generator or cnnvis convert-caffe"
        )
    archs = architectures()
    if arch not in archs:
        raise InputError(f"generator file '{path}' names an unknown architecture '{arch}'; known: {', '.join(archs)}")
    try:
        gen = archs[arch](**config)
    except (TypeError, ValueError) as e:
        raise InputError(f"generator file '{path}' has a bad config for {arch} ({e}); re-export it") from None
    target = gen.state_dict()
    if (
        not isinstance(state, dict)
        or state.keys() != target.keys()
        or any(state[k].shape != target[k].shape for k in target)
    ):
        bad = _first_mismatch(state if isinstance(state, dict) else {}, target)
        raise InputError(
            f"generator file '{path}' does not match the {arch} architecture ({bad}); "
            "pass a file saved from that architecture"
        )
    gen.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    gen.eval().to(device)
    for p in gen.parameters():
        p.requires_grad_(False)
    upper = obj.get("latent_upper") if FORMAT_KEY in obj else None
    if upper is not None:
        upper = check_bound(torch.as_tensor(upper, dtype=torch.float32), gen, path)
    return GeneratorFile(
        gen,
        obj.get("model") if FORMAT_KEY in obj else None,
        obj.get("layer") if FORMAT_KEY in obj else None,
        upper,
        dict(obj.get("info") or {}) if FORMAT_KEY in obj else {},
        path,
    )


def _first_mismatch(state: dict, target: dict) -> str:
    missing = [k for k in target if k not in state]
    if missing:
        return f"missing '{missing[0]}'"
    extra = [k for k in state if k not in target]
    if extra:
        return f"unexpected '{extra[0]}'"
    k = next(k for k in target if state[k].shape != target[k].shape)
    return f"'{k}' is {tuple(state[k].shape)}, expected {tuple(target[k].shape)}"


def check_bound(bound: torch.Tensor, gen: Generator, source: str) -> torch.Tensor:
    """``bound`` flattened to (C,), C = the latent's channels (its length for vector latents)."""
    bound = bound.flatten()
    c = gen.latent_shape[0]
    if bound.numel() != c:
        raise InputError(
            f"latent bound '{source}' has {bound.numel()} values but the {gen.arch} generator's latent has {c} "
            "channels; pass one upper bound per channel"
        )
    if not torch.isfinite(bound).all() or (bound < 0).any():
        raise InputError(f"latent bound '{source}' has negative or non-finite values; pass upper bounds >= 0")
    return bound


def read_latent_bound(path: str, gen: Generator) -> torch.Tensor:
    """Per-channel upper bounds (C,) from a text file (one number per line or whitespace separated,
    icnn's act_range files) or a ``.npy`` array."""
    if not os.path.isfile(path):
        raise InputError(
            f"latent bound file not found: '{path}'; pass a .txt or .npy file with one upper bound per latent channel"
        )
    try:
        arr = (
            np.load(path, allow_pickle=False) if path.endswith(".npy") else np.loadtxt(path, dtype=np.float64, ndmin=1)
        )
    except Exception as e:
        raise InputError(
            f"cannot read latent bound file '{path}' ({type(e).__name__}); "
            "write one number per latent channel as text or .npy"
        ) from None
    return check_bound(torch.as_tensor(np.asarray(arr, dtype=np.float32)), gen, path)
