"""Pool the per-class scores of several bench/quality.py runs (their ``scores_<set>.json``) and print each
method's top-1 over Lite1 and Lite2 and every cnnvis method's top-1 minus each peer's, paired by class.

A method's classes are the concatenation of its runs' classes, in the order the files are given; two methods are
paired only where their pooled class lists agree (the same classes, the same order).

    python bench/pool_scores.py /tmp/q_fresh/scores_fresh.json /tmp/q90/scores_fresh.json /tmp/q90td/scores_fresh.json
    python bench/pool_scores.py --as cnnvis-2views /tmp/q_fresh2/scores_fresh.json /tmp/q90v2/scores_fresh.json \\
        /tmp/q_fresh/scores_fresh.json /tmp/q90/scores_fresh.json /tmp/q90td/scores_fresh.json
    python bench/pool_scores.py cnnvis-2views=/tmp/ft_v2/scores_fresh-tune.json \\
        cnnvis-decay=/tmp/ft_d15/scores_fresh-tune.json

A file given as ``NAME=PATH`` has its cnnvis-fft rows renamed NAME (two cnnvis settings side by side); every cnnvis
method is then paired with every other method whose classes agree.
"""

from __future__ import annotations

import argparse
import json
import statistics

from quality import paired_difference, transfer_hits  # bench/quality.py


def pool(paths: list[str], rename: str | None) -> dict[str, tuple[list[int], list[dict]]]:
    """method -> (its classes, its rows), over the files in order; ``rename`` names the cnnvis-fft rows of
    the files before the first file that has a peer (a second cnnvis run beside the first)."""
    pooled: dict[str, tuple[list[int], list[dict]]] = {}
    renaming = rename is not None
    for given in paths:
        named, _, path = given.rpartition("=")
        with open(path) as f:
            scores = json.load(f)
        renaming = renaming and set(scores["rows"]) == {"cnnvis-fft"}
        for method, rows in scores["rows"].items():
            name = rename if renaming else method
            name = named if named and method == "cnnvis-fft" else name
            classes, pooled_rows = pooled.setdefault(name, ([], []))
            classes.extend(scores["classes"])
            pooled_rows.extend(rows)
    return pooled


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scores", nargs="+", help="scores_<set>.json files of bench/quality.py, each PATH or NAME=PATH")
    ap.add_argument("--as", dest="rename", default=None, help="name for the leading cnnvis-only files' rows")
    args = ap.parse_args()
    pooled = pool(args.scores, args.rename)
    for method, (classes, rows) in pooled.items():
        print(f"{method:<15} {len(classes):4d} classes  top-1 {statistics.mean(transfer_hits(rows)) / 2:.3f}")
    ours = [m for m in pooled if m.startswith("cnnvis") or m == args.rename]
    for i, a in enumerate(ours):
        for b in (m for m in pooled if m not in ours[: i + 1]):
            if pooled[a][0] == pooled[b][0]:
                print(f"top-1 {a} - {b}, paired by class: {paired_difference(pooled[a][1], pooled[b][1])}")


if __name__ == "__main__":
    main()
