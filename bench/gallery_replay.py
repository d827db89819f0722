"""Does every gallery entry still replay, pixel for pixel, with the code in this working tree?

For each entry of ``gallery/gallery.json`` that carries a manifest, run ``cnnvis replay FILE
--check`` (the current interpreter's cnnvis, i.e. this checkout) into a scratch folder and print
one row: match, differs or failed, with the seconds it took. Exit 1 if any entry differs or fails.

    python bench/gallery_replay.py                        # every entry (about 30 min on 2 cores)
    python bench/gallery_replay.py --max-seconds 60       # only the entries the gallery made in <= 60 s
    python bench/gallery_replay.py --only dream_dgn.jpg
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GALLERY = os.path.join(REPO, "gallery")


def has_manifest(name: str) -> bool:
    """An entry replays from its sidecar (a PNG also holds its manifest in a text chunk)."""
    from cnnvis.io.manifest import found_sidecar

    return os.path.exists(found_sidecar(os.path.join(GALLERY, name))) or name.endswith(".png")


def replay(name: str, scratch: str) -> tuple[str, float, str]:
    """(verdict, seconds, the last line of output) of ``cnnvis replay gallery/NAME --check``."""
    out = os.path.join(scratch, name)
    cnnvis = os.path.join(os.path.dirname(sys.executable), "cnnvis")  # this interpreter's, i.e. this checkout
    cmd = [cnnvis, "replay", os.path.join("gallery", name), "--check", "--out", out]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    lines = (res.stdout + res.stderr).strip().splitlines()
    verdict = {0: "match", 1: "differs"}.get(res.returncode, f"failed ({res.returncode})")
    return verdict, seconds, lines[-1][:150] if lines else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", default=[], help="an entry's file name (repeatable)")
    ap.add_argument("--max-seconds", type=float, default=None, help="skip entries that took longer to make")
    args = ap.parse_args()
    entries = json.load(open(os.path.join(GALLERY, "gallery.json")))
    rows, bad = [], 0
    with tempfile.TemporaryDirectory() as scratch:
        for e in entries:
            name = e["file"]
            if args.only and name not in args.only:
                continue
            if not has_manifest(name):
                rows.append((name, "no manifest", 0.0, ""))
                continue
            if args.max_seconds is not None and e.get("seconds", 0) > args.max_seconds:
                rows.append((name, "skipped (slow)", 0.0, f"made in {e.get('seconds')} s"))
                continue
            verdict, seconds, last = replay(name, scratch)
            bad += verdict != "match"
            rows.append((name, verdict, seconds, last))
            print(f"{name:<32} {verdict:<14} {seconds:7.1f} s  {last if verdict != 'match' else ''}", flush=True)
    print(
        f"\n{sum(r[1] == 'match' for r in rows)} match, {bad} differ or fail, "
        f"{sum(r[1].startswith(('no ', 'skipped')) for r in rows)} not replayed"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
