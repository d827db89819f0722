"""Files in and out: images, videos, feature arrays, manifests, atomic writes. Called by the CLI;
the library itself never writes.

The names below are imported on first use (PEP 562), so that reading a manifest or writing a
file does not load torch and OpenCV."""

from __future__ import annotations

import importlib

__all__ = ["hwc_to_bchw", "read_image", "save_image", "to_uint8"]


def __getattr__(name: str):
    if name in __all__:
        value = getattr(importlib.import_module("cnnvis.io.images"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cnnvis.io' has no attribute '{name}'")
