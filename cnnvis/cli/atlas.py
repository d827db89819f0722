"""What ``cnnvis atlas`` does once its flags are parsed: plan the units, skip the ones already
rendered, render the rest in batches (in-process, or on Ray: :mod:`cnnvis.cli.atlas_ray`),
write each unit's image atomically as it arrives, then the contact sheets, ``atlas.json`` and
``index.html``.

Nothing lost, nothing twice: ``atlas.json`` is rewritten (atomically) after every batch, a rerun
of the same command skips every unit whose image and manifest match the run's settings, and a
first Ctrl-C lets the batches in flight finish, writes them, and exits 130.
"""

from __future__ import annotations

import datetime
import json
import os
import shlex
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import click
import numpy as np
from tqdm import tqdm

from cnnvis.cli import interrupts
from cnnvis.defaults import ATLAS_BATCH
from cnnvis.errors import InputError
from cnnvis.io.files import check_folder_writable, make_folder, sweep_temporaries

ATLAS_FORMAT = "cnnvis-atlas/1"
SHEET_SIDE = 96  # pixels per unit in a layer's contact sheet
ATLAS_JSON_EVERY = 5.0  # seconds between rewrites of atlas.json during a run


@dataclass
class LayerPlan:
    """One layer of the atlas: its name as given, the hooked name, its unit count and the units to render."""

    name: str
    hook: str
    channels: int
    units: list[int]


@dataclass
class AtlasRun:
    """Everything the driver needs, resolved from the flags."""

    out: str
    model_name: str
    weights: str | None
    device: str
    kind: str
    size: tuple[int, int]
    seed: int
    batch: int
    options: dict
    prior_flags: dict
    settings: dict
    layers: list[LayerPlan]
    command: list[str]
    atlas: dict = field(default_factory=dict)
    dumped: float = float("-inf")  # when atlas.json was last written (time.monotonic)


def unit_path(layer: str, unit: int) -> str:
    """The image of one unit, relative to the atlas directory."""
    return f"{layer}/unit_{unit:04d}.png"


def _command_words(ctx: click.Context, drop: Sequence[str] = ()) -> list[str]:
    """The running command as words: every parameter that differs from its default (a preset's
    values included, so the words stand alone)."""
    words = ["cnnvis", ctx.command.name]
    for p in ctx.command.params:
        if p.name in drop or not isinstance(p, click.Option) and not isinstance(p, click.Argument):
            continue
        value = ctx.params.get(p.name)
        if isinstance(p, click.Argument):
            words += [str(value)] if value is not None else []
            continue
        if value is None or value == p.default or (p.multiple and not value) or p.name == "preset":
            continue
        flag = p.opts[0]
        if p.is_flag and not p.secondary_opts:
            words += [flag] if value else []
        elif p.is_flag:
            words += [flag if value else p.secondary_opts[0]]
        elif p.multiple:
            for v in value:
                words += [flag, str(v)]
        else:
            words += [flag, str(value)]
    return words


def plan_atlas(
    ctx: click.Context,
    model,
    weights,
    device,
    layers,
    units,
    kind,
    activation,
    size,
    out,
    batch,
    seed,
    options,
    prior_flags,
) -> tuple[AtlasRun, object]:
    """Resolve the flags: load the model once here for the shapes, check every unit range."""
    from cnnvis.cli.recon import parse_size
    from cnnvis.cli.units import parse_units
    from cnnvis.models.capture import resolve_layer
    from cnnvis.models.registry import load_model
    from cnnvis.pipeline.device import pick_device
    from cnnvis.recipes.recon import layer_shape

    dev = pick_device(device)
    m = load_model(model, weights, dev)
    hw = parse_size(size, m, None)
    plans = []
    for name in dict.fromkeys(layers):
        hook = resolve_layer(m.module, name, activation)
        n = layer_shape(m, hook, hw)[0]
        try:
            wanted = parse_units(units) if units is not None else list(range(n))
        except ValueError as e:
            raise InputError(f"bad --units: {e}") from None
        outside = [u for u in wanted if not 0 <= u < n]
        if outside:
            raise InputError(f"unit {outside[0]} is outside layer '{name}' with {n} units; use --units 0-{n - 1}")
        plans.append(LayerPlan(name, hook, n, wanted))
    settings = {
        "model": m.name,
        "weights_sha256": m.weights_sha256,
        "kind": kind,
        "activation": activation,
        "size": list(hw),
        "seed": seed,
        "render": {k: v for k, v in sorted(options.items()) if k not in ("batch_size", "seed")},
        "prior": {k: v for k, v in sorted(prior_flags.items()) if v not in (None, "none", "auto", "crop")},
    }
    run = AtlasRun(
        out,
        model,
        weights,
        str(dev),
        kind,
        hw,
        seed,
        batch,
        options,
        prior_flags,
        json.loads(json.dumps(settings)),
        plans,
        _command_words(ctx, drop=("units", "out", "batch_size", "ray_address", "workers", "force", "quiet")),
    )
    return run, m


def _read_json(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def _first_difference(a, b, where: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{where}{k}.")
    return f"{where.rstrip('.')}: {a!r} there, {b!r} now"


def load_or_start(run: AtlasRun, force: bool) -> int:
    """Start ``run.atlas`` from an earlier run in ``run.out``, dropping from the plan every unit
    whose image is there with a manifest of the same settings; return how many were skipped.

    The unit images' manifests are the record (``atlas.json`` is rewritten only every few
    seconds, so after a crash it may lag behind them). Other settings fail unless ``force``."""
    from cnnvis.io.manifest import read_manifest

    old = _read_json(os.path.join(run.out, "atlas.json"))
    if old is not None and old.get("settings") != run.settings and not force:
        raise InputError(
            f"'{run.out}' holds an atlas made with other settings ({_first_difference(old.get('settings'), run.settings)}); "
            f"use another --out, or --force to render over it"
        )
    keep = old is not None and old.get("settings") == run.settings
    run.atlas = {
        "format": ATLAS_FORMAT,
        "model": run.settings["model"],
        "kind": run.kind,
        "settings": run.settings,
        "command": shlex.join(run.command),
        "layers": {name: entry for name, entry in (old or {}).get("layers", {}).items()} if keep else {},
    }
    skipped = 0
    for lp in run.layers:
        entry = run.atlas["layers"].setdefault(lp.name, {"channels": lp.channels, "units": {}})
        todo = []
        for u in lp.units:
            rec = None
            path = os.path.join(run.out, unit_path(lp.name, u))
            if os.path.isfile(path):
                try:
                    rec = read_manifest(path).get("atlas")
                except InputError:
                    rec = None
            if rec is not None and rec.get("settings") == run.settings:
                if not force:
                    entry["units"][str(u)] = {
                        k: rec[k] for k in ("file", "activation", "seconds", "seed", "command") if k in rec
                    }
                    skipped += 1
                    continue
            entry["units"].pop(str(u), None)
            todo.append(u)
        lp.units = todo
    return skipped


def batches(run: AtlasRun) -> Iterator[tuple[LayerPlan, list[int]]]:
    for lp in run.layers:
        for i in range(0, len(lp.units), run.batch):
            yield lp, lp.units[i : i + run.batch]


def write_batch(run: AtlasRun, m, lp: LayerPlan, result: dict) -> None:
    """Write every unit of one rendered batch (atomically, with its manifest), then atlas.json."""
    from cnnvis.cli.recording import current_manifest
    from cnnvis.io.images import save_image
    from cnnvis.recipes.atlas import unit_seed

    make_folder(os.path.join(run.out, lp.name))
    base = current_manifest(model=m, device=run.device) or {}
    per_unit = result["seconds"] / max(1, len(result["units"]))
    for u, img, act in zip(result["units"], result["images"], result["activations"]):
        rel = unit_path(lp.name, u)
        again = run.command + ["--units", str(u), "--batch-size", "1", "--out", f"{run.out.rstrip('/')}_unit{u}"]
        record = {
            "file": rel,
            "activation": act,
            "seconds": round(per_unit, 3),
            "seed": unit_seed(run.seed, lp.hook, u),
            "command": shlex.join(again),
        }
        save_image(
            os.path.join(run.out, rel),
            np.ascontiguousarray(img),
            dict(base, atlas=dict(record, layer=lp.name, unit=u, settings=run.settings)),
        )
        run.atlas["layers"][lp.name]["units"][str(u)] = record
    if time.monotonic() - run.dumped >= ATLAS_JSON_EVERY:
        dump_atlas(run)


def dump_atlas(run: AtlasRun) -> None:
    """Write ``atlas.json`` atomically. Rewriting it after every batch would cost O(units^2)
    on a large atlas (15,000 units of a ResNet-50 is 5 MB a write), so the driver writes it every
    ``ATLAS_JSON_EVERY`` seconds and at the end; the unit manifests are the record."""
    from cnnvis.io.files import write_atomic

    run.atlas["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")

    def dump(tmp):
        with open(tmp, "w") as f:
            json.dump(run.atlas, f, indent=1)

    write_atomic(os.path.join(run.out, "atlas.json"), dump)
    run.dumped = time.monotonic()


def finish(run: AtlasRun) -> None:
    """The contact sheet of every layer and the page, from what ``atlas.json`` holds."""
    import cv2
    import imageio.v3 as iio

    from cnnvis.cli.atlas_page import atlas_html
    from cnnvis.io.files import write_atomic
    from cnnvis.io.images import contact_sheet, save_image

    for name, entry in run.atlas["layers"].items():
        units = sorted(entry["units"], key=int)
        if not units:
            continue
        thumbs = [
            cv2.resize(
                iio.imread(os.path.join(run.out, entry["units"][u]["file"]))[..., :3],
                (SHEET_SIDE, SHEET_SIDE),
                interpolation=cv2.INTER_AREA,
            )
            for u in units
        ]
        sheet = f"{name}_sheet.jpg"
        save_image(
            os.path.join(run.out, sheet), contact_sheet(thumbs, units, gap=2, columns=min(16, len(units))), quality=90
        )
        entry["sheet"] = sheet

    def page(tmp):
        with open(tmp, "w") as f:
            f.write(atlas_html(run.atlas))

    dump_atlas(run)
    write_atomic(os.path.join(run.out, "index.html"), page)


def run_atlas(
    ctx: click.Context,
    *,
    model,
    weights,
    device,
    layers,
    units,
    kind,
    activation,
    size,
    out,
    ray_address,
    workers,
    force,
    quiet,
    render_kw,
    prior_kw,
) -> int:
    """Render the atlas; return the exit code (0, or 130 after Ctrl-C)."""
    from cnnvis.cli.recon import options_given

    options = options_given(render_kw)
    batch = int(options.pop("batch_size", None) or ATLAS_BATCH)
    seed = int(options.pop("seed", 0) or 0)
    if workers is not None and ray_address is None:
        raise InputError("--workers sets the number of Ray workers; add --ray (a local runtime) or --ray ADDRESS")
    if os.path.exists(out) and not os.path.isdir(out):
        raise InputError(f"--out '{out}' is a file; the atlas is a directory: give a new or existing directory")
    make_folder(out)
    check_folder_writable(out, "atlas.json")  # a read-only folder fails now, not after the first batch
    run, m = plan_atlas(
        ctx, model, weights, device, layers, units, kind, activation, size, out, batch, seed, options, prior_kw
    )
    for folder in [out] + [os.path.join(out, lp.name) for lp in run.layers]:
        sweep_temporaries(folder, force=True)  # what a killed run was writing: never a unit
    skipped = load_or_start(run, force)
    total = sum(len(lp.units) for lp in run.layers)
    if skipped:
        click.echo(f"skipping {skipped} units already rendered in {out}", err=True)
    session = None
    if ray_address is not None:
        from cnnvis.cli.atlas_ray import RaySession

        session = RaySession(ray_address, workers)  # a bad address fails here, before the bar
    bar = tqdm(total=total, disable=quiet, unit="unit", dynamic_ncols=True)
    work = list(batches(run))
    started = time.perf_counter()

    def on_result(lp: LayerPlan, result: dict) -> None:
        write_batch(run, m, lp, result)
        bar.update(len(result["units"]))

    if session is not None:
        with session:
            session.render(run, work, on_result, stop=interrupts.asked)
    else:
        from cnnvis.recipes.atlas import UnitWorker

        worker = UnitWorker(m, run.device)  # the model loaded for planning renders too
        for lp, chunk in work:
            if interrupts.asked():
                break
            on_result(lp, worker.render(lp.hook, chunk, run.kind, run.size, run.seed, run.options, run.prior_flags))
    bar.close()
    finish(run)
    done = bar.n
    if interrupts.asked():
        click.echo(
            f"interrupted: {done} of {total} units written to {out}; rerun the same command to finish the rest",
            err=True,
        )
        return interrupts.exit_code()
    if not quiet:
        rate = done / max(1e-9, time.perf_counter() - started) * 60
        click.echo(
            f"wrote {done} units ({rate:.1f} units/min) to {out}: atlas.json, index.html"
            + (f"; {skipped} were already there" if skipped else "")
        )
    return 0
