"""Video coherence and streaming memory (issue 13): the real ``cnnvis dream CLIP`` command, in subprocesses.

Usage:
    python bench/video.py                              # both parts: 58 min on the shared 2-core machine (14 + 44)
    python bench/video.py --part coherence             # temporal error and objective gain
    python bench/video.py --part memory --frames 300   # peak RSS after 30 and 300 frames at 1920x1080

Coherence: three clips made from scikit-image's bundled photos, whose true motion is known:
``pan`` (astronaut, the camera moves 3 px right and 1 px down a frame), ``zoom`` (coffee, 2% a frame
into the centre) and ``object`` (a 64x64 patch of chelsea's face crossing the still coffee photo
at 4 px right and 1 px down a frame). Each is written as a near-lossless MP4 and dreamed three
ways at the same dream settings: independent frames (``--flow none --blend 0``), the constant
blend of pytorch-deepdream (``--flow none --blend 0.85``), flow-guided with the start only
(``--flow dis --blend 0.85 --temporal-weight 0``) and flow-guided as by default (``--flow dis
--blend 0.85``, temporal loss weight 10), into PNG frames. Temporal error: the mean
|out_t - warp(out_{t-1}, true flow)| on 0..255 over the pixels frame t-1 also shows. Gain: the
dream objective (cnn-vis form, per activation, on the whole frame) of the output minus that of
the input frame, averaged over frames.

Memory: a 1920x1080 pan of ``--frames`` frames, dreamed with the cheapest settings that still
run every stage (blocks.1, 1 step, 1 octave, 512-px tiles without overlap, DIS flow and temporal
loss, MP4 in and out); the peak resident set after 30 frames is read from /proc (VmHWM) when the
bar reaches 30, the final one from wait4; then a single 1920x1080 image dream with the same
settings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

SIZE = (160, 240)  # coherence clips, H x W
FRAMES = 12
# The dream settings of every coherence run: 3 octaves of 5 steps on blocks.3, tiles shifted by up
# to 8 px (jitter, as Google's deepdream does): a visible dream at a few seconds a frame on 2 cores.
DREAM = ["--layer", "blocks.3", "--octaves", "3", "--steps", "5", "--jitter", "8", "--seed", "0"]
METHODS = {
    "independent": ["--flow", "none", "--blend", "0"],
    "constant 0.85": ["--flow", "none", "--blend", "0.85"],
    "flow, start only": ["--flow", "dis", "--blend", "0.85", "--temporal-weight", "0"],
    "flow dis 0.85": ["--flow", "dis", "--blend", "0.85"],
}  # the default: with the temporal loss (weight 10)


ENV = dict(os.environ, OMP_NUM_THREADS="1")  # one thread: OpenMP's spinning costs many times over on 2 shared cores


def cnnvis_exe() -> str:
    return shutil.which("cnnvis") or os.path.join(os.path.dirname(sys.executable), "cnnvis")


# ---------------------------------------------------------------- clips with known motion
def _photo(name: str) -> np.ndarray:
    from skimage import data

    return getattr(data, name)().astype(np.float32) / 255


def clip_pan(n: int = FRAMES, size=SIZE, v=(3, 1)):
    """(frames, backward flows, occluded masks): frame_t(x) = frame_{t-1}(x + v)."""
    import cv2

    img = cv2.resize(_photo("astronaut"), (400, 400), interpolation=cv2.INTER_AREA)
    h, w = size
    frames = [img[40 + v[1] * t : 40 + v[1] * t + h, 20 + v[0] * t : 20 + v[0] * t + w] for t in range(n)]
    flow = np.zeros((h, w, 2), np.float32)
    flow[...] = v
    occ = np.zeros((h, w), bool)
    occ[:, w - v[0] :] = True
    occ[h - v[1] :, :] = True
    return frames, flow, occ


def clip_zoom(n: int = FRAMES, size=SIZE, s: float = 1.02):
    """frame_t(x) = photo(c + (x - c) / s**t): frame_t(x) = frame_{t-1}(c + (x - c) / s)."""
    import cv2

    img = _photo("coffee")
    h, w = size
    ch, cw = img.shape[0] / 2, img.shape[1] / 2
    frames = []
    for t in range(n):
        k = 0.5 / s**t  # the first frame shows half the photo's height
        m = np.array([[k, 0, cw - k * (w - 1) / 2], [0, k, ch - k * (h - 1) / 2]], np.float32)
        frames.append(
            cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT)
        )
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    flow = np.stack([(xs - (w - 1) / 2) * (1 / s - 1), (ys - (h - 1) / 2) * (1 / s - 1)], -1)
    return [np.clip(f, 0, 1) for f in frames], flow, np.zeros((h, w), bool)


def clip_object(n: int = FRAMES, size=SIZE, v=(4, 1), side: int = 64):
    """A patch of chelsea's face crossing the still coffee photo; per-frame flows and occlusions."""
    import cv2

    h, w = size
    bg = cv2.resize(_photo("coffee"), (w, h), interpolation=cv2.INTER_AREA)
    cat = _photo("chelsea")[60 : 60 + 2 * side, 170 : 170 + 2 * side]
    obj = cv2.resize(cat, (side, side), interpolation=cv2.INTER_AREA)
    frames, flows, occs, inside = [], [], [], []
    for t in range(n):
        y, x = 40 + v[1] * t, 20 + v[0] * t
        f = bg.copy()
        f[y : y + side, x : x + side] = obj
        m = np.zeros((h, w), bool)
        m[y : y + side, x : x + side] = True
        frames.append(f)
        inside.append(m)
        flow = np.zeros((h, w, 2), np.float32)
        flow[m] = (-v[0], -v[1])
        flows.append(flow)
        occs.append(inside[t - 1] & ~m if t else np.zeros_like(m))  # background the patch uncovered
    return frames, flows, occs


def write_mp4(path: str, frames, fps: float = 12.0) -> None:
    """Near-lossless H.264 (imageio-ffmpeg quality 10), so the clip's own noise stays small."""
    import imageio_ffmpeg

    h, w = frames[0].shape[:2]
    gen = imageio_ffmpeg.write_frames(path, (w, h), fps=fps, quality=10, macro_block_size=2, ffmpeg_log_level="error")
    gen.send(None)
    for f in frames:
        gen.send(np.ascontiguousarray((np.clip(f, 0, 1) * 255).round().astype(np.uint8)))
    gen.close()


# ---------------------------------------------------------------- coherence
def temporal_error(outs, flows, occs) -> float:
    """Mean |out_t - warp(out_{t-1}, true backward flow)| on 0..255 over pixels not occluded."""
    from cnnvis.video.flow import warp

    errs = []
    for t in range(1, len(outs)):
        flow = flows[t] if isinstance(flows, list) else flows
        occ = occs[t] if isinstance(occs, list) else occs
        a, b = outs[t].astype(np.float32), warp(outs[t - 1].astype(np.float32), flow)
        errs.append(np.abs(a - b)[~occ].mean())
    return float(np.mean(errs))


class Objective:
    """The dream objective of the runs, on a whole frame, per activation."""

    def __init__(self, layer: str):
        import cnnvis
        from cnnvis.objectives.activation import Dream

        self.model, self.layer, self.dream = cnnvis.load_model("efficientnet-lite0"), layer, Dream(layer)

    def __call__(self, img: np.ndarray) -> float:
        import torch

        from cnnvis.io.images import hwc_to_bchw
        from cnnvis.models.capture import FeatureCapture
        from cnnvis.objectives.base import Capture

        x = hwc_to_bchw(img.astype(np.float32) / 255 if img.dtype == np.uint8 else img)
        with FeatureCapture(self.model.module, [self.layer], model_name=self.model.name) as cap, torch.no_grad():
            feats = cap(self.model.normalize(x))
        score = self.dream.score(Capture(image=x, feats=feats, windows=[], canvas=tuple(x.shape[-2:])))
        return float(score.sum()) / feats[self.layer].numel()


def dream_clip(src: str, out: str, flags: list[str]) -> float:
    """Run the command into a PNG folder; return its wall time in seconds."""
    t = time.perf_counter()
    proc = subprocess.run(
        [cnnvis_exe(), "dream", src, *DREAM, *flags, "-q", "--out", out + "/"], capture_output=True, text=True, env=ENV
    )
    if proc.returncode != 0:
        raise SystemExit(f"cnnvis failed: {proc.stderr[-2000:]}")
    return time.perf_counter() - t


def coherence(work: str) -> dict:
    import imageio.v3 as iio

    objective = Objective(DREAM[DREAM.index("--layer") + 1])
    results = {}
    for name, make in (("pan", clip_pan), ("zoom", clip_zoom), ("object", clip_object)):
        frames, flows, occs = make()
        src = os.path.join(work, f"{name}.mp4")
        write_mp4(src, frames)
        from cnnvis.io.video import VideoReader

        with VideoReader(src) as r:
            decoded = [f.copy() for f in r]  # what the runs see (H.264 near-lossless)
        base = [objective(f) for f in decoded]
        row = {"input error": temporal_error(decoded, flows, occs)}
        for method, flags in METHODS.items():
            out = os.path.join(work, f"{name}_" + re.sub(r"\W+", "_", method))
            secs = dream_clip(src, out, flags)
            outs = [iio.imread(os.path.join(out, f)) for f in sorted(os.listdir(out)) if f.startswith("frame_")]
            row[method] = {
                "error": temporal_error(outs, flows, occs),
                "gain": float(np.mean([objective(o) - b for o, b in zip(outs, base)])),
                "s_per_frame": secs / len(outs),
            }
            print(
                f"{name:7s} {method:14s} error {row[method]['error']:6.2f}  gain {row[method]['gain']:7.4f}  "
                f"{secs / len(outs):5.2f} s/frame",
                flush=True,
            )
        results[name] = row
    return results


# ---------------------------------------------------------------- memory
def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a running process has used, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _hwm_gb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1e6  # kB -> GB
    return float("nan")


def memory(work: str, frames: int, size=(1080, 1920), early: int = 30) -> dict:
    import cv2
    import imageio.v3 as iio
    import imageio_ffmpeg

    h, w = size
    v = 4
    scene = cv2.resize(_photo("astronaut"), (w + v * frames, h), interpolation=cv2.INTER_CUBIC)
    src = os.path.join(work, "hd.mp4")
    gen = imageio_ffmpeg.write_frames(src, (w, h), fps=30, macro_block_size=2, ffmpeg_log_level="error")
    gen.send(None)
    for t in range(frames):
        gen.send(np.ascontiguousarray((np.clip(scene[:, v * t : v * t + w], 0, 1) * 255).round().astype(np.uint8)))
    gen.close()
    # the cheapest settings that still run every stage: a shallow layer, 1 step, 1 octave, 512-px tiles without overlap
    cheap = ["--layer", "blocks.1", "--steps", "1", "--octaves", "1", "--tile", "512", "--overlap", "0"]
    err_path = os.path.join(work, "hd_err.txt")
    pattern = re.compile(rf"\b{early}/{frames}\b")
    peak_early = t_early = cpu_early = None
    with open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [cnnvis_exe(), "dream", src, *cheap, "--out", os.path.join(work, "hd_out.mp4")],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=ENV,
        )
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)  # reaped here, so its rusage (peak RSS) is ours to read
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if peak_early is None:
                with open(err_path, errors="replace") as f:
                    if pattern.search(f.read()):
                        peak_early, t_early, cpu_early = _hwm_gb(proc.pid), time.perf_counter(), _cpu_s(proc.pid)
            time.sleep(0.2)
    t_end = time.perf_counter()
    if proc.returncode != 0:
        raise SystemExit(f"cnnvis failed: {open(err_path, errors='replace').read()[-2000:]}")
    frame0 = os.path.join(work, "frame0.png")
    iio.imwrite(frame0, (np.clip(scene[:, :w], 0, 1) * 255).round().astype(np.uint8))
    t1 = time.perf_counter()
    single = subprocess.Popen(
        [cnnvis_exe(), "dream", frame0, *cheap, "-q", "--out", os.path.join(work, "single.png")], env=ENV
    )
    _, _, usage1 = os.wait4(single.pid, 0)
    single.returncode = 0
    return {
        "frames": frames,
        "size": f"{w}x{h}",
        "settings": " ".join(cheap),
        "early": early,
        "peak_after_early_gb": peak_early,
        "peak_after_all_gb": usage.ru_maxrss / 1e6,
        "peak_single_image_gb": usage1.ru_maxrss / 1e6,
        "single_image_s": time.perf_counter() - t1,
        "wall_s": t_end - t0,
        "s_per_frame_after_early": (t_end - t_early) / (frames - early) if t_early else None,
        "cpu_s_per_frame_after_early": (usage.ru_utime + usage.ru_stime - cpu_early) / (frames - early)
        if cpu_early is not None
        else None,
        "single_image_cpu_s": usage1.ru_utime + usage1.ru_stime,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["all", "coherence", "memory"], default="all")
    ap.add_argument("--frames", type=int, default=300, help="Frames of the 1920x1080 memory clip.")
    ap.add_argument("--keep", default=None, help="Keep the clips and outputs in this folder.")
    args = ap.parse_args()
    work = args.keep or tempfile.mkdtemp(prefix="cnnvis_bench_video_")
    os.makedirs(work, exist_ok=True)
    out = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "dream": " ".join(DREAM)}
    t = time.perf_counter()
    try:
        if args.part in ("all", "coherence"):
            out["coherence"] = res = coherence(work)
            for clip, row in res.items():
                c, f = row["constant 0.85"], row["flow dis 0.85"]
                print(f"{clip}: flow/constant error {f['error'] / c['error']:.2f}, gain {f['gain'] / c['gain']:.2f}")
            errs = [row["flow dis 0.85"]["error"] / row["constant 0.85"]["error"] for row in res.values()]
            gains = [row["flow dis 0.85"]["gain"] / row["constant 0.85"]["gain"] for row in res.values()]
            print(
                f"mean over clips: error ratio {np.mean(errs):.2f} (target <= 0.5), "
                f"gain ratio {np.mean(gains):.2f} (target >= 0.9)"
            )
        if args.part in ("all", "memory"):
            out["memory"] = mem = memory(work, args.frames)
            print(json.dumps(mem, indent=1))
        out["total_s"] = time.perf_counter() - t
        print(json.dumps(out, indent=1))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
