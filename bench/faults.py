"""What the fault handling of issue 19 costs, and how fast a doomed run fails.

Prints, median of N:
- the cost of writing an image with its manifest through cnnvis's writer (encoded in memory,
  flushed to the disk, its sidecar with the image's SHA-256, both renamed as a pair under a folder
  lock) against a plain ``imageio.imwrite`` of the same picture plus a plain JSON sidecar;
- the seconds from the command's start to its one-line error for an output that cannot be written
  (``/proc``), an output that is the input, and a photo whose header says it is too large.

    python bench/faults.py --repeats 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
import zlib

import imageio.v3 as iio
import numpy as np


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def write_costs(side: int, repeats: int, folder: str) -> tuple[float, float]:
    from cnnvis.io.images import save_image

    rng = np.random.default_rng(0)
    img = (rng.random((side, side, 3)) * 255).astype(np.uint8)
    manifest = {"format": "cnnvis-manifest/1", "params": {"x": list(range(200))}}

    def plain():
        path = os.path.join(folder, "plain.png")
        iio.imwrite(path, img)
        with open(path + ".manifest.json", "w") as f:
            json.dump(manifest, f)

    def cnnvis_writer():
        save_image(os.path.join(folder, "safe.png"), img, manifest)

    plain()
    cnnvis_writer()  # warm both
    return _median_time(plain, repeats), _median_time(cnnvis_writer, repeats)


def _huge_png(path: str, side: int = 15000) -> None:
    """A valid PNG header (and a tiny IDAT) claiming ``side`` x ``side`` 16-bit RGB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = side.to_bytes(4, "big") * 2 + bytes([16, 2, 0, 0, 0])
    with open(path, "wb") as f:
        f.write(
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b"")
        )


def error_latency(args: list[str], repeats: int, cwd: str) -> tuple[float, str]:
    """Median seconds from the start of ``cnnvis ARGS`` to its exit, and its stderr."""
    err = ""

    def run():
        nonlocal err
        err = subprocess.run(["cnnvis", *args], capture_output=True, text=True, cwd=cwd).stderr.strip()

    return _median_time(run, repeats), err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--sides", type=int, nargs="+", default=[512, 2048])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        for side in args.sides:
            plain, safe = write_costs(side, args.repeats, d)
            print(
                f"write {side}x{side} PNG + sidecar: plain {plain * 1000:.1f} ms, cnnvis {safe * 1000:.1f} ms, "
                f"ratio {safe / plain:.2f} (median of {args.repeats})"
            )
        iio.imwrite(os.path.join(d, "photo.png"), np.zeros((64, 64, 3), np.uint8))
        _huge_png(os.path.join(d, "huge.png"))
        cases = {
            "--out /proc/x.png": ["dream", "--out", "/proc/x.png"],
            "--out equal to the input": ["dream", "photo.png", "--out", "./photo.png"],
            "15000x15000 16-bit PNG": ["dream", "huge.png", "--out", "x.png"],
        }
        for name, cmd in cases.items():
            seconds, err = error_latency(cmd, args.repeats, d)
            print(f"{name}: one-line error after {seconds:.2f} s (median of {args.repeats}): {err[:110]}")


if __name__ == "__main__":
    main()
