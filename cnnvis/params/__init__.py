"""Parameterizations: what the optimizer changes, and the images (N, 3, H, W) it draws.

Every kind implements :class:`cnnvis.params.base.Param` and registers itself by name; importing
this package registers them all.
"""

from cnnvis.params import fourier, generator, pixel  # noqa: F401  (registers the kinds)
from cnnvis.params.base import PARAM_KINDS, Param, ParamContext, StepInfo, create, register, restore

__all__ = ["PARAM_KINDS", "Param", "ParamContext", "StepInfo", "create", "register", "restore"]
