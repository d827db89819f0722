"""What an atlas directory holds, and how a rerun reads it back: the ``atlas.json`` schema, each
unit's file name and record, and the contact sheets. The caller writes the files (the CLI, with
its atomic writers); this module builds their contents and reads what an earlier run left.

The directory::

    atlas.json                 {"format", "model", "kind", "settings", "command", "created",
                                "layers": {LAYER: {"channels", "sheet", "units": {UNIT: record}}}}
    LAYER/unit_0005.png        one image per unit; its manifest's "atlas" entry is the unit's
                               record plus its layer, unit and the run's settings
    LAYER_sheet.jpg            every unit of the layer, SHEET_SIDE pixels each
    index.html                 the page (:mod:`cnnvis.recipes.atlas_page`)

A unit's record: ``file`` (relative to the directory), ``activation`` it reached, ``seconds``
(its share of its batch), ``seed`` (its own) and ``command`` (re-renders it alone).
"""

from __future__ import annotations

import datetime
import json
import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from cnnvis.errors import InputError
from cnnvis.recipes.atlas_plan import AtlasPlan, LayerPlan

ATLAS_FORMAT = "cnnvis-atlas/1"
ATLAS_JSON = "atlas.json"
SHEET_SIDE = 96  # pixels per unit in a layer's contact sheet
_RECORD_KEYS = ("file", "activation", "seconds", "seed", "command")


def unit_path(layer: str, unit: int) -> str:
    """The image of one unit, relative to the atlas directory."""
    return f"{layer}/unit_{unit:04d}.png"


def _read_json(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def first_difference(a, b, where: str = "") -> str:
    """The first key where two settings dicts differ, as ``render.steps: 2 there, 3 now``."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return first_difference(a.get(k), b.get(k), f"{where}{k}.")
    return f"{where.rstrip('.')}: {a!r} there, {b!r} now"


def start_atlas(plan: AtlasPlan, folder: str, force: bool = False) -> tuple[dict, int]:
    """The atlas dict of a run of ``plan`` into ``folder``, started from what an earlier run left
    there; returns it and how many units were skipped.

    Every unit whose image is in ``folder`` with a manifest of the same settings is dropped from
    ``plan.layers[i].units`` (unless ``force``) and kept in the atlas. The unit images' manifests
    are the record: ``atlas.json`` is rewritten only every few seconds, so after a crash it may lag
    behind them. An atlas of other settings raises :class:`InputError` unless ``force``."""
    old = _read_json(os.path.join(folder, ATLAS_JSON))
    same = old is not None and old.get("settings") == plan.settings
    if old is not None and not same and not force:
        raise InputError(
            f"'{folder}' holds an atlas made with other settings "
            f"({first_difference(old.get('settings'), plan.settings)}); "
            f"use another --out, or --force to render over it"
        )
    atlas = {
        "format": ATLAS_FORMAT,
        "model": plan.settings["model"],
        "kind": plan.kind,
        "settings": plan.settings,
        "command": shlex.join(plan.command),
        "layers": dict(old.get("layers", {})) if same else {},
    }
    skipped = 0
    for lp in plan.layers:
        entry = atlas["layers"].setdefault(lp.name, {"channels": lp.channels, "units": {}})
        todo = []
        for u in lp.units:
            rec = None if force else _unit_record(plan, folder, lp.name, u)
            if rec is None:
                entry["units"].pop(str(u), None)
                todo.append(u)
                continue
            entry["units"][str(u)] = rec
            skipped += 1
        lp.units = todo
    return atlas, skipped


def _unit_record(plan: AtlasPlan, folder: str, layer: str, unit: int) -> dict | None:
    """The record of a unit already rendered in ``folder`` with ``plan``'s settings, or None."""
    from cnnvis.io.manifest import read_manifest

    path = os.path.join(folder, unit_path(layer, unit))
    if not os.path.isfile(path):
        return None
    try:
        rec = read_manifest(path).get("atlas")
    except InputError:
        return None
    if rec is None or rec.get("settings") != plan.settings:
        return None
    return {k: rec[k] for k in _RECORD_KEYS if k in rec}


@dataclass
class UnitFile:
    """One rendered unit, ready to write: ``path`` relative to the atlas directory, ``image``
    uint8 (H, W, 3), ``record`` (its atlas.json entry) and ``manifest`` (the ``atlas`` entry of
    the image's cnnvis manifest, :func:`cnnvis.io.manifest.build_manifest`'s: the record with its
    layer, unit and the run's settings; a rerun reads it back)."""

    unit: int
    path: str
    image: np.ndarray
    record: dict
    manifest: dict


def unit_files(plan: AtlasPlan, lp: LayerPlan, result: dict, folder: str) -> Iterator[UnitFile]:
    """The files of one rendered batch (``result``: :meth:`cnnvis.recipes.atlas.UnitWorker.render`'s)
    of layer ``lp``, for an atlas in ``folder`` (named in each unit's re-render command)."""
    from cnnvis.recipes.atlas import unit_seed
    from cnnvis.recipes.units import units_text

    per_unit = result["seconds"] / max(1, len(result["units"]))
    for u, img, act in zip(result["units"], result["images"], result["activations"]):
        rel = unit_path(lp.name, u)
        # the unit's whole batch again: the batch's float summation order is part of its pixels
        batch = ["--units", units_text(result["units"]), "--batch-size", str(len(result["units"]))]
        again = plan.command + batch + ["--out", f"{folder.rstrip('/')}_unit{u}"]
        record = {
            "file": rel,
            "activation": act,
            "seconds": round(per_unit, 3),
            "seed": unit_seed(plan.seed, lp.hook, u),
            "command": shlex.join(again),
        }
        manifest = dict(record, layer=lp.name, unit=u, settings=plan.settings)
        yield UnitFile(u, rel, np.ascontiguousarray(img), record, manifest)


def add_unit(atlas: dict, layer: str, unit: int, record: dict) -> None:
    """Enter a written unit's record in the atlas dict."""
    atlas["layers"][layer]["units"][str(unit)] = record


def atlas_json(atlas: dict) -> str:
    """The text of ``atlas.json``, stamped with the time now (UTC) as ``created``."""
    atlas["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return json.dumps(atlas, indent=1)


def contact_sheets(atlas: dict, folder: str) -> Iterator[tuple[str, np.ndarray]]:
    """(file name, uint8 image) of each layer's contact sheet, from the unit images in ``folder``;
    a layer's entry names its sheet once the caller has written it (resumed after the yield)."""
    import cv2
    import imageio.v3 as iio

    from cnnvis.io.images import contact_sheet

    for name, entry in atlas["layers"].items():
        units = sorted(entry["units"], key=int)
        if not units:
            continue
        thumbs = [
            cv2.resize(
                iio.imread(os.path.join(folder, entry["units"][u]["file"]))[..., :3],
                (SHEET_SIDE, SHEET_SIDE),
                interpolation=cv2.INTER_AREA,
            )
            for u in units
        ]
        sheet = f"{name}_sheet.jpg"
        yield sheet, contact_sheet(thumbs, units, gap=2, columns=min(16, len(units)))
        entry["sheet"] = sheet
