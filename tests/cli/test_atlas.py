"""cnnvis atlas: every unit of a layer, in batches, resumable, on one machine or on Ray."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import (
    assert_one_line_error,
    cnnvis_exe,
    invoke,
    popen_sigint_default,
    subprocess_env,
    write_factory_module,
)

from cnnvis.io.manifest import read_manifest
from cnnvis.recipes.atlas import unit_feature_mask, unit_seed

FAST = ["--steps", "2", "--size", "32x32"]


def _atlas(out, factory, *more):
    return invoke(["atlas", f"{factory}:factory", "--layer", "conv3", *FAST, "-q", "--out", out, *more])


def _json(out) -> dict:
    with open(os.path.join(out, "atlas.json")) as f:
        return json.load(f)


def test_unit_seeds_are_a_function_of_seed_layer_and_unit():
    assert unit_seed(0, "a", 1) == unit_seed(0, "a", 1)
    assert len({unit_seed(0, "a", 1), unit_seed(1, "a", 1), unit_seed(0, "b", 1), unit_seed(0, "a", 2)}) == 4


def test_unit_feature_masks():
    assert unit_feature_mask((4, 5, 5), 2, "channel").tolist() == [0, 0, 1, 0]
    m = unit_feature_mask((4, 5, 5), 2, "neuron")
    assert m.sum() == 1 and m[2, 2, 2] == 1


def test_atlas_writes_every_unit_sheet_json_and_page(tmp_path, factory_module):
    out = tmp_path / "atlas"
    res = _atlas(out, factory_module, "--units", "0-5", "--batch-size", "3")
    assert res.exit_code == 0, res.output
    atlas = _json(out)
    units = atlas["layers"]["conv3"]["units"]
    assert sorted(units, key=int) == [str(u) for u in range(6)] and atlas["layers"]["conv3"]["channels"] == 16
    for u, rec in units.items():
        img = iio.imread(out / rec["file"])
        assert img.shape == (32, 32, 3)
        m = read_manifest(str(out / rec["file"]))
        assert m["atlas"]["unit"] == int(u) and m["atlas"]["settings"] == atlas["settings"]
        assert np.isfinite(rec["activation"]) and rec["seconds"] > 0
        batch = "--units 0-2 --batch-size 3" if int(u) < 3 else "--units 3-5 --batch-size 3"
        assert batch in rec["command"] and "--steps 2" in rec["command"]
    # each unit maximized its own channel: it reaches more of it than the others' images do
    assert units["1"]["activation"] != units["2"]["activation"]
    assert (out / "conv3_sheet.jpg").exists() and (out / "index.html").exists()
    assert "conv3" in (out / "index.html").read_text()


def test_a_units_recorded_command_gives_its_image_back(tmp_path, factory_module, monkeypatch):
    """The command renders the unit's whole batch (the batch's summation order is in its pixels)."""
    monkeypatch.chdir(tmp_path)
    assert _atlas("atlas", factory_module, "--units", "0-4", "--batch-size", "2").exit_code == 0
    rec = _json("atlas")["layers"]["conv3"]["units"]["3"]
    args = shlex.split(rec["command"])
    assert args[0] == "cnnvis" and "--units 2-3 --batch-size 2" in rec["command"]
    res = invoke(args[1:] + ["-q"])
    assert res.exit_code == 0, res.output
    again = iio.imread(tmp_path / "atlas_unit3" / rec["file"])
    assert np.array_equal(again, iio.imread(tmp_path / "atlas" / rec["file"]))


def test_rerun_skips_done_units_and_other_settings_need_force(tmp_path, factory_module):
    out = tmp_path / "atlas"
    assert _atlas(out, factory_module, "--units", "0-3", "--batch-size", "2").exit_code == 0
    first = (out / "conv3" / "unit_0002.png").stat().st_mtime_ns
    res = _atlas(out, factory_module, "--units", "0-5", "--batch-size", "2")
    assert res.exit_code == 0 and "skipping 4 units already rendered" in res.output, res.output
    assert (out / "conv3" / "unit_0002.png").stat().st_mtime_ns == first  # not rendered twice
    assert len(_json(out)["layers"]["conv3"]["units"]) == 6
    # the unit manifests are the record: a lost atlas.json (a crash between its rewrites) loses nothing
    (out / "atlas.json").unlink()
    again = _atlas(out, factory_module, "--units", "0-5", "--batch-size", "2")
    assert (
        again.exit_code == 0 and "skipping 6 units" in again.output and len(_json(out)["layers"]["conv3"]["units"]) == 6
    )
    other = invoke(
        [
            "atlas",
            f"{factory_module}:factory",
            "--layer",
            "conv3",
            "--steps",
            "3",
            "--size",
            "32x32",
            "-q",
            "--out",
            out,
            "--units",
            "0",
        ]
    )
    assert_one_line_error(other, "other settings", "steps", "--force")
    forced = invoke(
        [
            "atlas",
            f"{factory_module}:factory",
            "--layer",
            "conv3",
            "--steps",
            "3",
            "--size",
            "32x32",
            "-q",
            "--out",
            out,
            "--units",
            "0",
            "--force",
        ]
    )
    assert forced.exit_code == 0, forced.output
    assert list(_json(out)["layers"]["conv3"]["units"]) == ["0"]


def test_same_batch_is_bit_identical_and_other_batch_sizes_correlate(tmp_path, factory_module):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, bs in ((a, "4"), (b, "4"), (c, "1")):
        assert _atlas(out, factory_module, "--units", "0-3", "--batch-size", bs, "--steps", "6").exit_code == 0
    for u in range(4):
        x, y, z = (iio.imread(d / "conv3" / f"unit_{u:04d}.png").astype(float) for d in (a, b, c))
        assert np.array_equal(x, y)
        assert np.corrcoef(x.ravel(), z.ravel())[0, 1] > 0.9


@pytest.mark.parametrize(
    "args,needles",
    [
        (["--layer", "conv3", "--units", "10-20"], ["unit 16", "conv3", "16 units", "--units 0-15"]),
        (["--layer", "conv9"], ["conv9"]),
        (["--layer", "conv3", "--units", "3-1"], ["runs backwards"]),
        (["--layer", "conv3", "--workers", "2"], ["--ray"]),
    ],
)
def test_bad_input_is_one_line(tmp_path, factory_module, args, needles):
    res = invoke(["atlas", f"{factory_module}:factory", *args, *FAST, "--out", tmp_path / "atlas"])
    assert_one_line_error(res, *needles)


def test_unreachable_ray_address_is_one_line(tmp_path, factory_module):
    pytest.importorskip("ray")
    res = invoke(
        [
            "atlas",
            f"{factory_module}:factory",
            "--layer",
            "conv3",
            "--units",
            "0",
            *FAST,
            "--ray",
            "ray://127.0.0.1:1",
            "--out",
            tmp_path / "a",
        ]
    )
    assert_one_line_error(res, "cannot reach a Ray cluster", "ray://127.0.0.1:1")


def test_ray_missing_names_the_extra(tmp_path):
    shim = tmp_path / "shim" / "ray"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('no ray here')\n")
    factory = write_factory_module(tmp_path)
    p = subprocess.run(
        [
            cnnvis_exe(),
            "atlas",
            f"{factory}:factory",
            "--layer",
            "conv3",
            "--units",
            "0",
            *FAST,
            "--ray",
            "--out",
            str(tmp_path / "a"),
        ],
        capture_output=True,
        text=True,
        env=subprocess_env(tmp_path / "shim", tmp_path),
        timeout=120,
    )
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert ".[ray]" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def _progress(out) -> int:
    try:
        return len(_json(out)["layers"]["conv3"]["units"])
    except (OSError, ValueError, KeyError):
        return 0


def test_ctrl_c_finishes_the_batch_in_flight_and_a_rerun_finishes(tmp_path):
    factory = write_factory_module(tmp_path)
    out = tmp_path / "atlas"
    cmd = [
        cnnvis_exe(),
        "atlas",
        f"{factory}:factory",
        "--layer",
        "conv3",
        "--batch-size",
        "1",
        "--steps",
        "40",
        "--size",
        "32x32",
        "-q",
        "--out",
        str(out),
    ]
    proc = popen_sigint_default(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env(tmp_path))
    deadline = time.time() + 120
    while _progress(out) < 1 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    done = _progress(out)
    assert 1 <= done < 16 and b"Traceback" not in err and b"rerun the same command" in err
    for rec in _json(out)["layers"]["conv3"]["units"].values():
        assert iio.imread(out / rec["file"]).shape == (32, 32, 3)  # every unit listed is whole
    again = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(tmp_path), timeout=300)
    assert again.returncode == 0 and f"skipping {done} units" in again.stderr, again.stderr
    assert _progress(out) == 16


def _ray_workers() -> list[int]:
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"ray::_Worker" in f.read():
                        pids.append(int(pid))
            except OSError:
                pass
    return pids


def test_ray_atlas_survives_a_killed_worker_with_every_unit_once(tmp_path):
    pytest.importorskip("ray")
    factory = write_factory_module(tmp_path)
    out = tmp_path / "atlas"
    cmd = [
        cnnvis_exe(),
        "atlas",
        f"{factory}:factory",
        "--layer",
        "conv3",
        "--batch-size",
        "1",
        "--steps",
        "30",
        "--size",
        "32x32",
        "-q",
        "--ray",
        "--workers",
        "2",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env(tmp_path))
    deadline = time.time() + 180
    while (_progress(out) < 1 or len(_ray_workers()) < 2) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    victims = _ray_workers()
    assert proc.poll() is None and victims, "the run ended before a worker could be killed"
    os.kill(victims[0], signal.SIGKILL)
    killed_at = _progress(out)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert killed_at < 16
    units = _json(out)["layers"]["conv3"]["units"]
    assert sorted(map(int, units)) == list(range(16))
    assert all((out / rec["file"]).exists() for rec in units.values())


def test_a_ray_session_loads_its_workers_once_for_every_render(tmp_path, monkeypatch):
    """Later renders of a session reuse the actors (and the model each loaded): a warm-up batch
    warms the real run, and nothing is loaded twice."""
    pytest.importorskip("ray")
    from types import SimpleNamespace

    from cnnvis.priors.spec import PriorSpec
    from cnnvis.recipes.atlas_plan import LayerPlan
    from cnnvis.recipes.atlas_ray import RaySession

    factory = write_factory_module(tmp_path)
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    )  # the workers import the factory
    run = SimpleNamespace(
        model_name=f"{factory}:factory",
        weights=None,
        device="cpu",
        kind="channel",
        size=(32, 32),
        seed=0,
        options={"steps": 2, "batch_size": 2},
        prior=PriorSpec(),
    )
    lp = LayerPlan("conv3", "conv3", 0, [0, 1, 2, 3])
    got = []
    with RaySession("local", 1, 1) as session:
        session.render(run, [(lp, [0, 1])], lambda _lp, result: got.append(result), lambda: False)
        first = session.pool(run.model_name, run.weights, run.device)
        pid = session.ray.get(first[0].pid.remote())
        session.render(run, [(lp, [2, 3])], lambda _lp, result: got.append(result), lambda: False)
        assert session.pool(run.model_name, run.weights, run.device) is first
        assert session.ray.get(first[0].pid.remote()) == pid
    assert [r["units"] for r in got] == [[0, 1], [2, 3]]
    assert all(r["images"].shape == (2, 32, 32, 3) for r in got)
