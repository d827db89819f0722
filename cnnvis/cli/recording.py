"""The manifest of the command now running: click's resolved parameters and preset.

Kept in the CLI because it reads click's context; the library builds manifests from explicit
arguments (:func:`cnnvis.io.manifest.build_manifest`).
"""

from __future__ import annotations

import re

import click

from cnnvis.io.manifest import build_manifest


def named_layouts(model, params: dict) -> dict[str, str]:
    """The layout (``tokens+1``, ``nhwc`` ...) of every layer that the command's settings name
    and the run has probed (see :mod:`cnnvis.models.layouts`)."""
    from cnnvis.models.layouts import known_layouts

    words = set()
    for value in params.values():
        for text in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(text, str):
                words.update(re.split(r"[:,@=\s]+", text))
    layouts = known_layouts(model.module)
    return {name: layouts[name].describe() for name in sorted(words & layouts.keys())}


def current_manifest(
    *, model=None, cfg=None, device=None, status: str = "complete", compute: dict | None = None
) -> dict | None:
    """The manifest of the click command now running (its resolved parameters and preset), or
    ``None`` outside a command (library use). ``compute``: how the network ran
    (:meth:`cnnvis.models.compute.Execution.record`), else resolved from ``cfg`` here."""
    ctx = click.get_current_context(silent=True)
    if ctx is None or ctx.command is None:
        return None
    if compute is None and model is not None and cfg is not None:
        import torch

        from cnnvis.models.compute import execution

        compute = execution(cfg.compute, model.module, torch.device(str(device or "cpu"))).record()
    return build_manifest(
        ctx.command.name,
        ctx.params,
        model=model,
        cfg=cfg,
        device=device,
        status=status,
        preset=ctx.meta.get("cnnvis_preset"),
        layouts=None if model is None else named_layouts(model, ctx.params),
        compute=compute,
    )
