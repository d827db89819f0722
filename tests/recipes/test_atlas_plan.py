"""An atlas from Python, with no command line: plan it, render its batches, record them, resume."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from cnnvis.errors import InputError
from cnnvis.io.images import save_image
from cnnvis.io.manifest import build_manifest
from cnnvis.recipes.atlas import UnitWorker, render_batches
from cnnvis.recipes.atlas_page import atlas_html
from cnnvis.recipes.atlas_plan import AtlasOptions, batches, plan_atlas
from cnnvis.recipes.atlas_record import add_unit, atlas_json, start_atlas, unit_files, unit_path


def _plan(factory_module, steps: int = 2, **opts):
    opts = AtlasOptions(**{"layers": ("conv3",), "size": "32x32", **opts})
    return plan_atlas(opts, model=f"{factory_module}:factory", render={"steps": steps}, seed=3, batch=2)


def test_plan_resolves_layers_units_and_settings(factory_module):
    plan, model = _plan(factory_module, layers=("conv3", "conv3"), units="0-2,5")
    assert [lp.name for lp in plan.layers] == ["conv3"]  # a layer given twice is planned once
    assert plan.layers[0].channels == 16 and plan.layers[0].units == [0, 1, 2, 5]
    assert plan.size == (32, 32) and plan.command == []
    assert [(lp.name, units) for lp, units in batches(plan)] == [("conv3", [0, 1]), ("conv3", [2, 5])]
    assert plan.settings["render"] == {"steps": 2} and plan.settings["prior"] == {}
    assert plan.settings["seed"] == 3 and plan.settings["size"] == [32, 32] and plan.settings["kind"] == "channel"
    every, _ = _plan(factory_module)
    assert every.layers[0].units == list(range(16))


@pytest.mark.parametrize(
    "opts,needle",
    [
        ({"layers": ()}, "--layer"),
        ({"workers": 2}, "--ray"),
        ({"kind": "pixel"}, "channel, neuron"),
        ({"workers": 0, "ray_address": "local"}, "--workers"),
    ],
)
def test_bad_options_raise_one_line(opts, needle):
    with pytest.raises(InputError, match=needle):
        AtlasOptions(**{"layers": ("conv3",), **opts})


def test_a_unit_outside_the_layer_names_the_range(factory_module):
    with pytest.raises(InputError, match="use --units 0-15"):
        _plan(factory_module, units=[3, 16])


def test_render_record_and_resume_without_the_cli(tmp_path, factory_module):
    plan, model = _plan(factory_module, units="0-2")
    atlas, skipped = start_atlas(plan, str(tmp_path))
    assert skipped == 0 and atlas["layers"] == {"conv3": {"channels": 16, "units": {}}}
    results = []
    render_batches(UnitWorker(model, plan.device), plan, list(batches(plan)), lambda lp, r: results.append((lp, r)))
    assert [r["units"] for _, r in results] == [[0, 1], [2]]
    (tmp_path / "conv3").mkdir()
    base = build_manifest("atlas", {}, model=model, device=plan.device)  # a unit's image carries a cnnvis manifest
    for lp, result in results:
        for f in unit_files(plan, lp, result, str(tmp_path)):
            assert f.path == unit_path("conv3", f.unit) and f.image.shape == (32, 32, 3) and f.image.dtype == np.uint8
            save_image(str(tmp_path / f.path), f.image, dict(base, atlas=f.manifest))
            add_unit(atlas, lp.name, f.unit, f.record)
    (tmp_path / "atlas.json").write_text(atlas_json(atlas))
    stored = json.loads((tmp_path / "atlas.json").read_text())
    assert sorted(stored["layers"]["conv3"]["units"], key=int) == ["0", "1", "2"] and "created" in stored
    assert 'id="u-conv3-2"' in atlas_html(stored)
    # a rerun of the same plan skips every unit; other settings are refused, naming the difference
    again, _ = _plan(factory_module, units="0-3")
    _, skipped = start_atlas(again, str(tmp_path))
    assert skipped == 3 and again.layers[0].units == [3]
    other, _ = _plan(factory_module, steps=3, units="0")
    with pytest.raises(InputError, match="render.steps: 2 there, 3 now"):
        start_atlas(other, str(tmp_path))
    _, skipped = start_atlas(other, str(tmp_path), force=True)
    assert skipped == 0 and other.layers[0].units == [0]


def test_the_atlas_recipes_import_no_click():
    code = (
        "import sys, cnnvis.recipes.atlas, cnnvis.recipes.atlas_plan, cnnvis.recipes.atlas_record, "
        "cnnvis.recipes.atlas_page, cnnvis.recipes.atlas_ray; "
        "print(sorted(m for m in ('click', 'cnnvis.cli') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
