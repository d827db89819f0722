"""The manifest of the command now running: click's resolved parameters and preset.

Kept in the CLI because it reads click's context; the library builds manifests from explicit
arguments (:func:`cnnvis.io.manifest.build_manifest`).
"""

from __future__ import annotations

import click

from cnnvis.io.manifest import build_manifest


def current_manifest(*, model=None, cfg=None, device=None, status: str = "complete") -> dict | None:
    """The manifest of the click command now running (its resolved parameters and preset), or
    ``None`` outside a command (library use)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None or ctx.command is None:
        return None
    return build_manifest(
        ctx.command.name,
        ctx.params,
        model=model,
        cfg=cfg,
        device=device,
        status=status,
        preset=ctx.meta.get("cnnvis_preset"),
    )
