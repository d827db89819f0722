"""Parameterizations: what the optimizer changes, and the images (N, C, H, W) it draws (C = 3,
or 4 for RGBA with ``cfg.alpha``): ``pixel`` (also ``--decorrelate``), ``fft``, ``cppn``,
``lowres``, ``maco`` and the generator prior's ``generator``.

Every kind implements :class:`cnnvis.params.base.Param` and registers itself by name; importing
this package registers them all.
"""

from cnnvis.params import cppn, fourier, generator, lowres, maco, pixel  # noqa: F401  (registers the kinds)
from cnnvis.params.base import PARAM_KINDS, Param, ParamContext, StepInfo, create, kind_of, register, restore

__all__ = ["PARAM_KINDS", "Param", "ParamContext", "StepInfo", "create", "kind_of", "register", "restore"]
