"""cnnvis: deep dream, preferred images and feature inversion through one multiscale tiled pipeline.

The public names below are imported on first use (PEP 562), so ``import cnnvis`` and the
``cnnvis`` command start without loading torch until a command needs it.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Capture": "objectives.base",
    "Channel": "objectives.activation",
    "Dream": "objectives.activation",
    "Guide": "objectives.activation",
    "Neuron": "objectives.activation",
    "Objective": "objectives.base",
    "Sum": "objectives.base",
    "OnItem": "objectives.base",
    "Direction": "objectives.direction",
    "DirectionNeuron": "objectives.direction",
    "Caricature": "objectives.direction",
    "Diversity": "objectives.batch",
    "Alignment": "objectives.batch",
    "L1": "objectives.penalties",
    "L2": "objectives.penalties",
    "Blur": "objectives.penalties",
    "Jitter": "regularize.transforms",
    "RandomAffine": "regularize.transforms",
    "TV": "regularize.penalties",
    "PNorm": "regularize.penalties",
    "Param": "params.base",
    "PixelParam": "params.pixel",
    "FourierParam": "params.fourier",
    "GeneratorParam": "params.generator",
    "FeatureCapture": "models.capture",
    "list_layers": "models.capture",
    "RenderConfig": "config",
    "InputError": "errors",
    "DEFAULT_MODEL": "models.registry",
    "LoadedModel": "models.registry",
    "load_model": "models.registry",
    "Progress": "pipeline.progress",
    "Render": "pipeline.loop",
    "Start": "canvas.start",
    "Terms": "regularize.terms",
    "Stages": "params.stages",
    "GeneratorStages": "params.generator",
    "pick_device": "pipeline.device",
    "render": "pipeline.loop",
    "Invert": "objectives.inversion",
    "MaskedUnits": "objectives.inversion",
    "reconstruct_image": "recipes.recon",
    "invert_image": "recipes.recon",
    "generate_image": "recipes.recon",
    "unit_mask": "recipes.recon",
    "receptive_field_mask": "recipes.recon",
    "pixel_correlation": "recipes.metrics",
    "ssim": "recipes.metrics",
    "feature_errors": "recipes.metrics",
    "quality": "recipes.metrics",
    "load_features": "io.features",
    "resolve_layer": "models.capture",
    "DGNPrior": "priors.dgn",
    "GeneratorImage": "priors.dgn",
    "load_prior": "priors.dgn",
    "Generator": "priors.generators.base",
    "UpconvGenerator": "priors.generators.upconv",
    "load_generator": "priors.generators.files",
    "save_generator": "priors.generators.files",
    "GeneratorTrainer": "priors.train",
    "TrainConfig": "priors.train",
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
