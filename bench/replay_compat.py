"""Do outputs of an older cnnvis still replay bit for bit with the code in this working tree?

For each bundled preset (with overrides that keep it small and fast on a CPU but keep its
optimizer, parameterization, prior and sizing form), render with the OLD code (a detached git
worktree of REV, default bca3515), then run ``cnnvis replay OUT.png --check`` with the NEW code
(the current interpreter's ``cnnvis``, i.e. this checkout) and print one row per preset.
Exit 1 if any replay differs or fails.

    python bench/replay_compat.py                   # every case, old code = bca3515
    python bench/replay_compat.py --rev HEAD~3 --only channel --only icnn-gd --keep

How the old code is imported: the venv has this checkout installed in editable mode, whose
meta-path finder maps ``cnnvis`` and ``cnnvis.presets`` to the NEW tree. It is appended to
``sys.meta_path`` after the ordinary path finder, so with ``PYTHONPATH=<worktree>`` plain
``cnnvis`` does come from the worktree, but ``cnnvis.presets`` (the repository's top-level
``presets/`` folder, installed under that name) is not found under ``<worktree>/cnnvis`` and
falls through to the editable finder, i.e. to the NEW ``presets/``. The old CLI is therefore
started with a short bootstrap that drops the editable finder from ``sys.meta_path`` and loads
``<worktree>/presets`` as ``cnnvis.presets`` before importing ``cnnvis.cli``; the script checks
(and prints) where ``cnnvis``, ``cnnvis.cli`` and ``cnnvis.presets`` come from before running.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The old tree is in $CNNVIS_OLD_TREE (also on PYTHONPATH). Drop the editable install's finder,
# map cnnvis.presets to the old tree's presets/, then run the old CLI as `cnnvis ARGS`.
BOOT = (
    "import os, sys, importlib.util as u\n"
    "wt = os.environ['CNNVIS_OLD_TREE']\n"
    "sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, '__module__', '').startswith('__editable__')]\n"
    "import cnnvis\n"
    "s = u.spec_from_file_location('cnnvis.presets', os.path.join(wt, 'presets', '__init__.py'), "
    "submodule_search_locations=[os.path.join(wt, 'presets')])\n"
    "m = u.module_from_spec(s); sys.modules['cnnvis.presets'] = m; s.loader.exec_module(m); cnnvis.presets = m\n"
)
RUN_OLD = BOOT + "sys.argv[0] = 'cnnvis'\nfrom cnnvis.cli import main\nmain()\n"
WHERE_OLD = BOOT + (
    "import json, cnnvis.cli\n"
    "from importlib import resources\n"
    "print(json.dumps({'cnnvis': cnnvis.__file__, 'cnnvis.cli': cnnvis.cli.__file__, 'cnnvis.presets': "
    "str(resources.files('cnnvis.presets'))}))\n"
)
NAIVE = (
    "import json, cnnvis, cnnvis.presets\n"
    "print(json.dumps({'cnnvis': cnnvis.__file__, 'cnnvis.presets': cnnvis.presets.__file__}))\n"
)

# invert needs an IMAGE and --layer (the layers the gallery used): the old tree's bundled photo, copied into the scratch
# dir (the manifest records its path and SHA-256, and replay checks both).
PHOTO = "chelsea.jpg"

# (name, preset, overrides). Each keeps the preset's code path: optimizer, param, prior, sizing form.
CASES = [
    ("channel", "channel", ["--final-size", "224x224", "--steps", "3"]),  # noise dream, rmsprop, jitter
    ("neuron", "neuron", ["--steps", "3"]),  # prefer: Fourier image, Adam
    ("cnnpref-low", "cnnpref-low", ["--steps", "3"]),  # prefer --rf-mask
    ("cnnpref-high", "cnnpref-high", ["--steps", "3"]),  # prefer through the DGN prior
    ("icnn-gd", "icnn-gd", [PHOTO, "--layer", "blocks.3", "--steps", "3"]),  # invert, gd + momentum + blur schedule
    ("icnn-lbfgs", "icnn-lbfgs", [PHOTO, "--layer", "blocks.3", "--steps", "2"]),  # invert, L-BFGS
    ("icnn-dgn", "icnn-dgn", [PHOTO, "--layer", "blocks.5", "--steps", "3"]),  # invert through the DGN prior, Adam
    (
        "deepdream-classic",
        "deepdream-classic",
        ["--final-size", "240x360", "--octaves", "3", "--steps", "2"],
    ),  # sgd, meansquare, octaves
    (
        "cnnvis-image-dream",
        "cnnvis-image-dream",
        ["--initial-size", "150x225", "--final-size", "300x451", "--steps", "2"],
    ),  # 3 sizes
    ("dream-dgn", "dream-dgn", ["--final-size", "224x336", "--steps", "3"]),  # pixel dream through the DGN prior
    (
        "cnnvis-noise-1080p*",
        "cnnvis-noise-1080p",
        ["--initial-size", "112x192", "--final-size", "224x384", "--num-sizes", "2", "--steps", "2"],
    ),
    ("hires-4k*", "hires-4k", ["--final-size", "300x451", "--octaves", "2", "--steps", "2"]),
]


def sh(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def last_lines(text: str, n: int = 2) -> str:
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:])


def old_env(tree: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = tree
    env["CNNVIS_OLD_TREE"] = tree
    return env


def check_old_import(tree: str, scratch: str) -> None:
    env = old_env(tree)
    naive = sh([sys.executable, "-c", NAIVE], env=env, cwd=scratch)
    print(f"plain PYTHONPATH={tree}: {naive.stdout.strip() or last_lines(naive.stderr)}")
    r = sh([sys.executable, "-c", WHERE_OLD], env=env, cwd=scratch)
    if r.returncode != 0:
        sys.exit(f"cannot import the old cnnvis: {last_lines(r.stderr, 4)}")
    where = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"with the bootstrap: {json.dumps(where)}")
    for mod, path in where.items():
        if not os.path.realpath(path).startswith(os.path.realpath(tree) + os.sep):
            sys.exit(f"{mod} is imported from {path}, not from the old tree {tree}")


def _run_old(
    tree: str, scratch: str, preset: str, extra: list[str], timeout: int
) -> tuple[str, str, float, str | None]:
    """Render one case with the OLD code: (its output path, the command as shown, seconds, error or None)."""
    out = os.path.join(scratch, preset + ".png")
    cli = ["cnnvis", _command_of(tree, preset), "--preset", preset, *extra, "-q", "--out", out]
    shown = shlex.join([*cli[:-1], os.path.basename(out)])
    t = time.perf_counter()
    try:
        r = sh([sys.executable, "-c", RUN_OLD, *cli[1:]], env=old_env(tree), cwd=scratch, timeout=timeout)
        old_s = time.perf_counter() - t
        old_err = (
            None if r.returncode == 0 and os.path.isfile(out) else f"OLD rc {r.returncode}: {last_lines(r.stderr)}"
        )
    except subprocess.TimeoutExpired:
        old_s, old_err = time.perf_counter() - t, f"OLD timed out after {timeout}s"
    return out, shown, old_s, old_err


def _replay(new_cnnvis: str, scratch: str, out: str, preset: str, timeout: int) -> str:
    """``cnnvis replay OUT --check`` with the NEW code: "match", "DIFFERS: ..." or "ERROR ..."."""
    rep = os.path.join(scratch, preset + ".replay.png")
    try:
        r = sh([new_cnnvis, "replay", out, "--check", "--out", rep], cwd=scratch, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"ERROR: NEW replay timed out after {timeout}s"
    text = (r.stdout + "\n" + r.stderr).strip()
    if r.returncode == 0 and "replay matches" in r.stdout:
        return "match"
    if "replay differs" in text:
        result = "DIFFERS: " + text[text.index("replay differs") :].splitlines()[0].split(": ", 1)[-1]
        if os.path.isfile(rep):
            result += _shape_note(out, rep)
        return result
    return f"ERROR (NEW rc {r.returncode}): {last_lines(r.stderr or r.stdout)}"


def _run_cases(cases, tree: str, scratch: str, new_cnnvis: str, timeout: int) -> tuple[list[tuple], bool]:
    """Each case rendered with the OLD code and replayed with the NEW: (table rows, whether any failed)."""
    rows, bad = [], False
    for name, preset, extra in cases:
        out, shown, old_s, old_err = _run_old(tree, scratch, preset, extra, timeout)
        if old_err:
            rows.append((name, shown, f"{old_s:.1f}", old_err))
            bad = True
            print(f"  {name}: {old_err}", flush=True)
            continue
        result = _replay(new_cnnvis, scratch, out, preset, timeout)
        bad |= result != "match"
        rows.append((name, shown, f"{old_s:.1f}", result))
        print(f"  {name}: old {old_s:.1f}s, {result}", flush=True)
    return rows, bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rev", default="bca3515", help="old revision [default: bca3515]")
    ap.add_argument("--only", action="append", default=[], help="run only this case (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir (the worktree is always removed)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per old run or replay")
    args = ap.parse_args()

    cases = [c for c in CASES if not args.only or c[0].rstrip("*") in args.only or c[1] in args.only]
    new_cnnvis = shutil.which("cnnvis", path=os.path.dirname(sys.executable)) or shutil.which("cnnvis")
    base = tempfile.mkdtemp(prefix="cnnvis-replay-compat-")
    tree, scratch = os.path.join(base, "old"), os.path.join(base, "out")
    os.makedirs(scratch)
    rows, bad = [], False
    r = sh(["git", "-C", REPO, "worktree", "add", "--detach", tree, args.rev])
    if r.returncode != 0:
        sys.exit(f"git worktree add failed: {last_lines(r.stderr, 3)}")
    try:
        rev = sh(["git", "-C", tree, "rev-parse", "--short", "HEAD"]).stdout.strip()
        print(f"old code: {args.rev} ({rev}) in {tree}; new code: {new_cnnvis}; outputs in {scratch}")
        check_old_import(tree, scratch)
        shutil.copy(os.path.join(tree, "cnnvis", "data", PHOTO), os.path.join(scratch, PHOTO))
        rows, bad = _run_cases(cases, tree, scratch, new_cnnvis, args.timeout)
    finally:
        sh(["git", "-C", REPO, "worktree", "remove", "--force", tree])
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print(f"kept {scratch}")

    print()
    print("| preset | command (OLD code) | old s | replay (NEW code) |")
    print("| --- | --- | ---: | --- |")
    for row in rows:
        print("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    print("\n* = run only with small size overrides")
    return 1 if bad else 0


def _command_of(tree: str, preset: str) -> str:
    import tomllib

    with open(os.path.join(tree, "presets", preset + ".toml"), "rb") as f:
        return tomllib.load(f)["command"]


def _shape_note(a_path: str, b_path: str) -> str:
    try:
        import imageio.v3 as iio

        a, b = iio.imread(a_path), iio.imread(b_path)
        return f" (old {a.shape[1]}x{a.shape[0]}, replay {b.shape[1]}x{b.shape[0]})" if a.shape != b.shape else ""
    except Exception:  # noqa: BLE001 - a note only
        return ""


if __name__ == "__main__":
    sys.exit(main())
