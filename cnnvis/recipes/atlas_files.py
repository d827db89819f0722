"""An atlas's files, each written atomically into the atlas folder: the units of each batch as it
arrives (with their manifests), ``atlas.json`` every few seconds and at the end, the contact sheets
and ``index.html``. Written where the caller says (``cnnvis atlas --out``), never elsewhere.
"""

from __future__ import annotations

import os
import time

from cnnvis.errors import InputError
from cnnvis.io.files import check_folder_writable, make_folder, write_text_atomic
from cnnvis.recipes.atlas_plan import AtlasPlan, LayerPlan
from cnnvis.recipes.atlas_record import ATLAS_JSON, add_unit, atlas_json, contact_sheets, unit_files

ATLAS_JSON_EVERY = 5.0  # seconds between rewrites of atlas.json during a run


class AtlasWriter:
    """Writes one run's files into ``out``, each atomically: the units of each batch as it
    arrives (each with ``manifest`` and its own record), ``atlas.json`` every
    ``ATLAS_JSON_EVERY`` seconds, and at the end the contact sheets, ``atlas.json`` and
    ``index.html``.

    Rewriting ``atlas.json`` after every batch would cost O(units^2) on a large atlas (15,000
    units of a ResNet-50 is 5 MB a write); the unit manifests are the record."""

    def __init__(self, plan: AtlasPlan, atlas: dict, out: str, manifest: dict | None = None):
        self.plan, self.atlas, self.out, self.manifest = plan, atlas, out, manifest or {}
        self.dumped = float("-inf")  # when atlas.json was last written (time.monotonic)

    def batch(self, lp: LayerPlan, result: dict) -> None:
        """Write every unit of one rendered batch (``UnitWorker.render``'s result)."""
        from cnnvis.io.images import save_image

        make_folder(os.path.join(self.out, lp.name))
        base = self.manifest
        for f in unit_files(self.plan, lp, result, self.out):
            save_image(os.path.join(self.out, f.path), f.image, dict(base, atlas=f.manifest))
            add_unit(self.atlas, lp.name, f.unit, f.record)
        if time.monotonic() - self.dumped >= ATLAS_JSON_EVERY:
            self.dump()

    def dump(self) -> None:
        write_text_atomic(os.path.join(self.out, ATLAS_JSON), atlas_json(self.atlas))
        self.dumped = time.monotonic()

    def finish(self) -> None:
        """The contact sheet of every layer, ``atlas.json`` and the page, from what the atlas holds."""
        from cnnvis.io.images import save_image
        from cnnvis.recipes.atlas_page import atlas_html

        for name, sheet in contact_sheets(self.atlas, self.out):
            save_image(os.path.join(self.out, name), sheet, quality=90)
        self.dump()
        write_text_atomic(os.path.join(self.out, "index.html"), atlas_html(self.atlas))


def open_atlas_folder(out: str | None) -> str:
    """The atlas directory, made and checked writable now (not after the first batch)."""
    if not out:
        raise InputError("an atlas needs a directory; give --out DIR, e.g. --out atlas/")
    if os.path.exists(out) and not os.path.isdir(out):
        raise InputError(f"--out '{out}' is a file; the atlas is a directory: give a new or existing directory")
    make_folder(out)
    check_folder_writable(out, ATLAS_JSON)
    return out
