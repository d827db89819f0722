"""How fast does a bad flag get its one-line answer? (issue 24: "under 2 s")

Runs each bad command as a subprocess N times and prints the median wall time, the exit code and
the error line. ``--code DIR`` runs another checkout's code instead (a ``git worktree`` of an older
revision: its ``cnnvis`` package comes first on PYTHONPATH), so before and after are measured in one
run on the same machine::

    python bench/errors.py --repeat 5
    git worktree add --detach /tmp/old 77f19db && python bench/errors.py --code /tmp/old
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

BAD = [
    ["dream", "--layer", "blocks.99", "--out", "x.png"],
    ["dream", "--layer", "blocks.5", "--channel", "999", "--out", "x.png"],
    ["dream", "--noise", "--layer", "blocks.5.0", "--channel", "17", "--x", "9", "--y", "3", "--out", "x.png"],
    ["prefer", "--layer", "blocks.4", "--channel", "5000", "--out", "x.png"],
    ["invert", "IMAGE", "--layer", "blocks.9", "--out", "x.png"],
    ["dream", "--final-size", "5x", "--out", "x.png"],
]
RUN = "import sys; from cnnvis.cli.entry import run; sys.argv[0] = 'cnnvis'; run()"


def time_command(args: list[str], env: dict, repeat: int) -> tuple[float, int, str]:
    times, res = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - t0)
    line = (res.stderr.strip().splitlines() or [""])[-1]
    return statistics.median(times), res.returncode, line


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--code", default=None, help="a checkout whose cnnvis to run (default: this one)")
    args = ap.parse_args()
    env = dict(os.environ)
    if args.code:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.abspath(args.code), env.get("PYTHONPATH")]))
    print(f"# median of {args.repeat} runs, code: {args.code or 'this checkout'}, cwd {os.getcwd()}")
    print("| command | seconds | exit | message |\n|---|---|---|---|")
    from cnnvis.io.images import bundled_image_path

    for bad in BAD:
        bad = [bundled_image_path() if a == "IMAGE" else a for a in bad]
        seconds, code, line = time_command(bad, env, args.repeat)
        print(f"| `cnnvis {' '.join(bad)}` | {seconds:.2f} | {code} | {line[:90]} |", flush=True)


if __name__ == "__main__":
    main()
