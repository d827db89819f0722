"""cnnvis: deep dream, preferred images and feature inversion through one multiscale tiled pipeline.

The public names below are imported on first use (PEP 562), so ``import cnnvis`` and the
``cnnvis`` command start without loading torch until a command needs it.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Capture": "objectives", "Channel": "objectives", "Dream": "objectives", "Guide": "objectives",
    "Neuron": "objectives", "Objective": "objectives",
    "FeatureCapture": "capture", "list_layers": "capture",
    "RenderConfig": "config",
    "InputError": "errors",
    "DEFAULT_MODEL": "models", "LoadedModel": "models", "load_model": "models",
    "Progress": "pipeline", "Render": "pipeline", "pick_device": "pipeline", "render": "pipeline",
    "Invert": "inversion", "MaskedUnits": "inversion",
    "reconstruct_image": "recon", "invert_image": "recon", "generate_image": "recon", "unit_mask": "recon",
    "receptive_field_mask": "recon",
    "pixel_correlation": "metrics", "ssim": "metrics", "feature_errors": "metrics", "quality": "metrics",
    "load_features": "features_io", "resolve_layer": "capture",
    "DGNPrior": "dgn", "GeneratorImage": "dgn", "load_prior": "dgn",
    "Generator": "generators.base", "UpconvGenerator": "generators.upconv",
    "load_generator": "generators.files", "save_generator": "generators.files",
    "GeneratorTrainer": "train_generator", "TrainConfig": "train_generator",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cnnvis' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
