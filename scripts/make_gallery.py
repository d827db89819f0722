"""Regenerate gallery/ from the bundled presets: every image, its command, size, time and peak memory.

Each entry runs ``cnnvis COMMAND --preset NAME [ARGS]`` as a subprocess (peak memory is that
process's maximum resident set, from ``os.wait4``), then the script writes gallery/README.md (a
table: image, preset, exact command, size, time, peak memory) and gallery/index.html (the same,
as a static page that a headless browser can check).

    python scripts/make_gallery.py                 # the real gallery into gallery/ (about 20 min on 2 cores)
    python scripts/make_gallery.py --quick --out /tmp/g   # tiny sizes and 1-2 steps: for the test
    python scripts/make_gallery.py --ray           # every entry as a Ray task (local runtime; --ray ADDRESS joins a
                                                   # cluster)

With ``--ray`` each entry runs as a Ray task in a scratch folder of the worker that takes it, and
its files travel back to the driver, which writes them into ``--out`` (workers need the
repository checked out and cnnvis installed, at the same path, for the bundled photo).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CHELSEA = "cnnvis/data/chelsea.jpg"  # the bundled photo (skimage's, CC0)
PAN_CLIP = "{out}/pan_clip.mp4"  # a camera pan over the bundled photo, made by _pan_clip in the output folder
VIDEO_DREAM = ["--octaves", "3", "--steps", "6", "--jitter", "8"]
VIDEO_QUICK = ["--steps", "1", "--octaves", "1"]
CATALOGUE_QUICK = ["--steps", "1", "--size", "64x64"]
VALIDATION_CLASSES = "638,26,847"  # bench/quality.py's validation classes (nobody tuned on them)

# (output file, preset or None, extra arguments, caption, quick-mode arguments appended in --quick)
ENTRIES = [
    (
        "default_dream.jpg",
        None,
        ["dream"],
        "the default: blocks.4.2 on the bundled photo, 4 octaves",
        ["--steps", "1", "--octaves", "2"],
    ),
    (
        "cnnvis_image_dream.jpg",
        "cnnvis-image-dream",
        [CHELSEA],
        "cnn-vis image dream, 3 sizes up to 2x",
        ["--steps", "1", "--final-size", "x0.5", "--initial-size", "x0.4"],
    ),
    (
        "cnnvis_noise_1080p.jpg",
        "cnnvis-noise-1080p",
        ["--jpeg-quality", "50"],  # the gallery's size: a few MB in all
        "cnn-vis noise growth, 270x480 to 1080x1920",
        ["--steps", "1", "--initial-size", "54x96", "--final-size", "81x144", "--num-sizes", "2"],
    ),
    (
        "deepdream_classic.jpg",
        "deepdream-classic",
        [CHELSEA],
        "Google's classic deepdream",
        ["--steps", "1", "--octaves", "2"],
    ),
    (
        "channel_blocks.5.0_7.jpg",
        "channel",
        [],
        "a blocks.5.0 channel from noise",
        ["--steps", "1", "--final-size", "64x64"],
    ),
    (
        "neuron_blocks.4_5.jpg",
        "neuron",
        [],
        "the centre unit of blocks.4 channel 5",
        ["--steps", "1", "--size", "64x64"],
    ),
    (
        "icnn_gd_blocks.3.jpg",
        "icnn-gd",
        [CHELSEA, "--layer", "blocks.3", "--size", "224x224"],
        "icnn GD inversion of blocks.3",
        ["--steps", "1", "--size", "64x64"],
    ),
    (
        "icnn_lbfgs_blocks.3.jpg",
        "icnn-lbfgs",
        [CHELSEA, "--layer", "blocks.3", "--size", "224x224"],
        "icnn L-BFGS inversion of blocks.3",
        ["--steps", "1", "--size", "64x64"],
    ),
    (
        "icnn_dgn_blocks.5.jpg",
        "icnn-dgn",
        [CHELSEA, "--layer", "blocks.5", "--size", "224x224"],
        "inversion of blocks.5 through the DGN prior",
        ["--steps", "1", "--size", "64x64"],
    ),
    (
        "cnnpref_low_blocks.1_3.jpg",
        "cnnpref-low",
        [],
        "cnnpref: a blocks.1 unit in its receptive field",
        ["--steps", "1", "--size", "64x64"],
    ),
    (
        "cnnpref_high_cat.jpg",
        "cnnpref-high",
        [],
        "cnnpref: the Egyptian-cat unit through the DGN prior",
        ["--steps", "1", "--size", "64x64"],
    ),
    (
        "dream_dgn.jpg",
        "dream-dgn",
        [],
        "a dream through the DGN prior",
        ["--steps", "1", "--final-size", "64x96", "--octaves", "1"],
    ),
    (
        "hires_4k.jpg",
        "hires-4k",
        [CHELSEA, "--jpeg-quality", "40"],  # 2.1 MB at 75
        "a 3840x2160 tiled dream",
        ["--steps", "1", "--final-size", "72x128", "--octaves", "2"],
    ),
    (
        "progress.gif",
        None,
        ["dream", CHELSEA, "--octaves", "3", "--steps", "12", "--video-every", "6", "--video"],
        "the progress of a dream",
        ["--octaves", "1", "--steps", "2", "--final-size", "48x72"],
    ),
    (
        "zoom.gif",
        None,
        ["dream", CHELSEA, "--zoom-frames", "16", "--steps", "4", "--final-size", "150x225"],  # 1 MB at 24
        "the infinite zoom",
        ["--zoom-frames", "2", "--steps", "1", "--final-size", "48x72"],
    ),
    (
        "video_flow.gif",
        None,
        ["dream", PAN_CLIP, "--flow", "dis", *VIDEO_DREAM],
        "a camera pan over the bundled photo (pan_clip.mp4, which scripts/make_gallery.py makes) "
        "dreamed along the optical flow (--flow dis): the dream moves with the cat",
        VIDEO_QUICK,
    ),
    (
        "video_blend.gif",
        None,
        ["dream", PAN_CLIP, "--flow", "none", "--blend", "0.85", *VIDEO_DREAM],
        "the same pan with the constant blend (--flow none): the dream smears",
        VIDEO_QUICK,
    ),
    # the feature-visualization catalogue (lucid's objectives and parameterizations, neural-dream's controls)
    (
        "direction.jpg",
        "direction",
        [],
        "a direction in activation space: blocks.4 channels 5 + 42 as one vector (direction-cossim)",
        CATALOGUE_QUICK,
    ),
    (
        "caricature_blocks.3.jpg",
        "caricature",
        ["--reference", CHELSEA],
        "a caricature: what blocks.3 sees in the bundled photo, amplified",
        CATALOGUE_QUICK,
    ),
    (
        "penalties.jpg",
        "penalties",
        [],
        "a channel minus lucid's L1 and blur penalties, written as -O terms",
        CATALOGUE_QUICK,
    ),
    (
        "diversity.jpg",
        "diversity",
        [],
        "diversity: 4 images of one channel that differ in their Gram matrices (a contact sheet)",
        CATALOGUE_QUICK,
    ),
    (
        "interpolate.jpg",
        "interpolate",
        [],
        "interpolation from channel 5 to 42: shared low-resolution terms and alignment (a sheet; "
        "interpolate.gif beside it)",
        CATALOGUE_QUICK,
    ),
    (
        "alpha.png",
        "alpha",
        [],
        "transparency: an RGBA channel visualization, optimized over random backgrounds (an RGBA PNG)",
        CATALOGUE_QUICK,
    ),
    (
        "maco.png",
        "maco",
        [],
        "MACO: a blocks.5.0 channel, only the Fourier phase optimized, at natural photos' amplitude, with the "
        "objective's gradient as transparency (an RGBA PNG)",
        CATALOGUE_QUICK,
    ),
    (
        "maco_4k.jpg",
        "maco-4k",
        [],
        "MACO at 4096x4096, grown through 4 sizes from 512 px in bounded memory (2 GB)",
        ["--steps", "1", "--size", "96x96", "--initial-size", "48x48", "--num-sizes", "2"],
    ),
    (
        "classes_fft.jpg",
        None,
        ["prefer", "--layer", "classifier", "--channel", VALIDATION_CLASSES, "--param", "fft"],
        "three validation classes of bench/quality.py (maillot, newt, tank) as decorrelated Fourier images, with "
        "prefer's default for class logits (--robust: lucent-strength transforms, two views a step, a photo's "
        "1/f**1.5 spectrum; a sheet)",
        CATALOGUE_QUICK,
    ),
    (
        "classes_maco.jpg",
        None,
        ["prefer", "--layer", "classifier", "--channel", VALIDATION_CLASSES, "--param", "maco"],
        "the same classes with --param maco (a sheet)",
        CATALOGUE_QUICK,
    ),
    (
        "accentuate.jpg",
        "accentuate",
        [CHELSEA],
        "feature accentuation: a blocks.5.0 channel raised in the photo, anchored to its activations",
        ["--steps", "1", "--size", "64x96"],
    ),
    (
        "cppn_1024.jpg",
        "cppn",
        ["--final-size", "1024x1024"],
        "a CPPN optimized at 224x224, drawn at 1024x1024 in one pass (the preset draws 4096x4096)",
        ["--steps", "1", "--size", "64x64", "--final-size", "128x128"],
    ),
    ("lowres.jpg", "lowres", [], "a low-resolution tensor (56x56, upsampled) for one channel", CATALOGUE_QUICK),
    (
        "decorrelate.jpg",
        "decorrelate",
        [],
        "a pixel dream from noise in the decorrelated colour space",
        ["--steps", "1", "--final-size", "64x64", "--octaves", "1"],
    ),
    (
        "lap_dream.jpg",
        "lap-dream",
        [],
        "a Laplacian-normalized dream from noise (--lap-scale 4)",
        ["--steps", "1", "--final-size", "64x64", "--octaves", "1"],
    ),
    (
        "channel_mode.jpg",
        "channel-mode",
        [CHELSEA],
        "a dream of the 8 blocks.4 channels the photo excites most (--channel-mode strongest)",
        ["--steps", "1", "--final-size", "64x96", "--octaves", "1"],
    ),
]


def _pan_clip(path: str, frames: int = 10, size: tuple[int, int] = (126, 224), step: int = 4) -> str:
    """Write (once) a camera pan over the bundled photo, ``step`` pixels a frame, as a near-lossless MP4."""
    if os.path.exists(path):
        return path
    import imageio.v3 as iio
    import imageio_ffmpeg
    import numpy as np

    photo = iio.imread(os.path.join(ROOT, CHELSEA))
    h, w = size
    gen = imageio_ffmpeg.write_frames(path, (w, h), fps=8, quality=10, macro_block_size=2, ffmpeg_log_level="error")
    gen.send(None)
    for t in range(frames):
        gen.send(np.ascontiguousarray(photo[60 : 60 + h, 20 + step * t : 20 + step * t + w, :3]))
    gen.close()
    return path


def _command(out_dir: str, name: str, preset: str | None, extra: list[str], quick: list[str] | None) -> list[str]:
    """The cnnvis argument list of one entry (--out last, so the table shows it plainly)."""
    path = os.path.join(out_dir, name)
    extra = [_pan_clip(a.format(out=out_dir)) if a == PAN_CLIP else a for a in extra]
    if preset is None:
        args = list(extra)
        if "--video" in args:  # progress.gif: the video is the entry, the still goes beside it
            i = args.index("--video")
            args = args[: i + 1] + [path] + args[i + 1 :] + ["--out", os.path.join(out_dir, "progress_final.jpg")]
            return args + (quick or [])
        return args + (quick or []) + ["--out", path]
    from cnnvis.cli.presets import read_preset

    return [read_preset(preset).command, "--preset", preset, *extra, *(quick or []), "--out", path]


def _run(args: list[str]) -> tuple[float, float, int, str]:
    """Run ``cnnvis ARGS``; return (seconds, peak RSS in GB, exit code, stderr tail)."""
    exe = shutil.which("cnnvis") or os.path.join(os.path.dirname(sys.executable), "cnnvis")
    t0 = time.perf_counter()
    proc = subprocess.Popen([exe, *args, "-q"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.stdout.read()
    return seconds, usage.ru_maxrss / 1024 / 1024, os.waitstatus_to_exitcode(status), err[-500:]


def _run_in_scratch(name: str, preset: str | None, extra: list[str], quick: list[str] | None) -> dict:
    """One entry in a scratch folder: its measurements and the bytes of every file it wrote (a
    Ray task's body: what it returns travels to the driver)."""
    import glob
    import tempfile

    tmp = tempfile.mkdtemp(prefix="cnnvis-gallery-")
    try:
        seconds, rss, code, err = _run(_command(tmp, name, preset, extra, quick))
        files = {}
        for path in glob.glob(os.path.join(tmp, "*")):
            with open(path, "rb") as f:
                files[os.path.basename(path)] = f.read()
        return {"seconds": seconds, "rss": rss, "code": code, "err": err, "files": files}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _ray_results(address: str, todo: list[tuple]) -> dict:
    """Run every entry of ``todo`` as a Ray task; return {name: result} as they finish."""
    import ray

    if address == "local":
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    else:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        # Each entry is one cnnvis process using the cores it finds: one task per CPU slot would
        # oversubscribe, so a task asks for 2 (the entries' own thread count on this machine).
        task = ray.remote(num_cpus=min(2, os.cpu_count() or 1), max_retries=2)(_run_in_scratch)
        refs = {task.remote(name, preset, extra, quick): name for name, preset, extra, quick in todo}
        results = {}
        while refs:
            (ref,), _ = ray.wait(list(refs), num_returns=1)
            results[refs.pop(ref)] = ray.get(ref)
            print(f"{len(results)}/{len(todo)} entries done", flush=True)
        return results
    finally:
        ray.shutdown()


# Entries too large to commit whole (the gallery stays a few MB): a thumbnail and a full-resolution centre crop of
# this side are committed beside the full render's manifest, which remakes it (cnnvis replay).
COMMITTED_AS_CROP = {"maco_4k.jpg": 1024, "hires_4k.jpg": 1024}


def thumbnail_and_crop(out_dir: str, name: str, side: int) -> tuple[str, str]:
    """Write NAME_thumb.jpg (the image resized to ``side``) and NAME_crop.jpg (its centre, ``side`` x ``side`` at
    full resolution) and remove the full image, keeping its manifest beside; return the two file names."""
    import imageio.v3 as iio
    import numpy as np
    from PIL import Image

    from cnnvis.io.images import save_image

    path = os.path.join(out_dir, name)
    image = iio.imread(path)[..., :3]
    h, w = image.shape[:2]
    stem = os.path.splitext(name)[0]
    thumb, crop = f"{stem}_thumb.jpg", f"{stem}_crop.jpg"
    scale = side / max(h, w)
    small = Image.fromarray(image).resize((round(w * scale), round(h * scale)), Image.LANCZOS)
    save_image(os.path.join(out_dir, thumb), np.asarray(small), quality=85)
    top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
    save_image(os.path.join(out_dir, crop), image[top : top + side, left : left + side], quality=85)
    os.remove(path)
    return thumb, crop


def _shown(out_dir: str, name: str) -> str:
    """The file an entry shows: its --out, or for a batch (which writes NAME_b0.jpg ... and a
    contact sheet) NAME_sheet.jpg."""
    if os.path.exists(os.path.join(out_dir, name)):
        return name
    stem, ext = os.path.splitext(name)
    return stem + "_sheet" + ext


def _size(path: str) -> str:
    import imageio.v3 as iio

    props = iio.improps(path)
    shape = props.shape
    h, w = (shape[1], shape[2]) if props.n_images and len(shape) == 4 else (shape[0], shape[1])
    return f"{w}x{h}" + (f", {shape[0]} frames" if len(shape) == 4 else "")


# The static page around the gallery's cards (index.html); its script reports broken images to the
# headless-browser test.
_PAGE_HEAD = (
    "<!doctype html>\n"
    '<html lang="en"><head><meta charset="utf-8"><title>cnnvis gallery</title>\n'
    "<style>body{font-family:sans-serif;margin:2em;background:#fafafa} "
    "figure{display:inline-block;vertical-align:top;width:420px;margin:1em}\n"
    "img{max-width:400px;max-height:400px} code{font-size:0.8em;word-break:break-all}</style></head>\n"
)
_PAGE_TAIL = (
    '<p id="status">loading</p>\n'
    "<script>\n"
    "// For the headless-browser test: after load, report every image that failed to decode.\n"
    'window.addEventListener("load", () => {\n'
    "  const bad = [...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
    '.map(i => i.getAttribute("src"));\n'
    '  document.getElementById("status").textContent = bad.length ? "broken: " + bad.join(", ") '
    ': "all " + document.images.length + " images loaded";\n'
    "});\n"
    "</script></body></html>\n"
)


def write_pages(out_dir: str, rows: list[dict], machine: str) -> None:
    """gallery/README.md and gallery/index.html from the measured rows."""
    md = [
        "# Gallery",
        "",
        f"Regenerated by `python scripts/make_gallery.py` on {machine}. Each image with the preset and the exact",
        "command that made it (run from the repository root), its size, "
        "its wall time and its peak memory (maximum resident set).",
        "",
        "| image | preset | command | size | time | peak memory |",
        "|---|---|---|---|---|---|",
    ]
    cards = []
    for r in rows:
        img = f"![{r['caption']}]({r['file']})" + (f" ![a full-resolution crop]({r['crop']})" if r.get("crop") else "")
        md.append(
            f"| {img} | {r['preset'] or '-'} | `{r['command']}` | {r['size']} | "
            f"{r['seconds']:.0f} s | {r['rss']:.2f} GB |"
        )
        crop = r.get("crop")
        crop_img = f'<img src="{html.escape(crop)}" alt="a full-resolution crop" loading="eager">' if crop else ""
        cards.append(
            f'<figure><img src="{html.escape(r["file"])}" alt="{html.escape(r["caption"])}" loading="eager">{crop_img}'
            f"<figcaption><b>{html.escape(r['caption'])}</b><br>preset: {html.escape(r['preset'] or '-')}<br>"
            f"<code>{html.escape(r['command'])}</code><br>{html.escape(r['size'])}, {r['seconds']:.0f} s, "
            f"{r['rss']:.2f} GB</figcaption></figure>"
        )
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    page = (
        _PAGE_HEAD
        + "<body><h1>cnnvis gallery</h1><p>Regenerated by <code>python scripts/make_gallery.py</code> on "
        + f"{html.escape(machine)}.</p>\n"
        + "\n".join(cards)
        + "\n"
        + _PAGE_TAIL
    )
    with open(os.path.join(out_dir, "index.html"), "w") as f:
        f.write(page)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "gallery"), help="gallery folder [default: gallery/]")
    ap.add_argument("--quick", action="store_true", help="tiny sizes and 1-2 steps (for tests)")
    ap.add_argument("--only", nargs="*", default=None, help="only these output files")
    ap.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help=(
            "run the entries as Ray tasks: alone, a local runtime; with an ADDRESS, that cluster (needs the ray extra)"
        ),
    )
    args = ap.parse_args()
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    rows, failed = [], []
    chosen = [e for e in ENTRIES if not args.only or e[0] in args.only]
    remote = (
        _ray_results(args.ray, [(n, p, x, q if args.quick else None) for n, p, x, _, q in chosen]) if args.ray else {}
    )
    for name, preset, extra, caption, quick in chosen:
        cmd = _command(out_dir, name, preset, extra, quick if args.quick else None)
        if args.ray:
            r = remote[name]
            seconds, rss, code, err = r["seconds"], r["rss"], r["code"], r["err"]
            for fname, data in r["files"].items():  # the driver writes what the worker made
                with open(os.path.join(out_dir, fname), "wb") as f:
                    f.write(data)
        else:
            seconds, rss, code, err = _run(cmd)
        # shown as run from the repository root into gallery/, wherever --out put this run
        shown = "cnnvis " + " ".join(
            shlex.quote("gallery/" + os.path.relpath(a, out_dir) if a.startswith(out_dir + os.sep) else a) for a in cmd
        )
        print(f"{name}: {seconds:.0f} s, {rss:.2f} GB, exit {code}", flush=True)
        if code != 0:
            failed.append(f"{name}: exit {code}: {err.strip().splitlines()[-1] if err.strip() else ''}")
            continue
        file = _shown(out_dir, name)
        if (
            file != name and not args.quick
        ):  # a batch: the sheet shows every image, so the committed gallery keeps only it (and a GIF)
            import glob

            stem = os.path.splitext(name)[0]
            for extra in glob.glob(os.path.join(out_dir, f"{stem}_[btc][0-9]*")):
                os.remove(extra)
        row = dict(
            file=file,
            entry=name,
            preset=preset,
            command=shown,
            caption=caption,
            size=_size(os.path.join(out_dir, file)),
            seconds=seconds,
            rss=rss,
        )
        if name in COMMITTED_AS_CROP and not args.quick:
            row["file"], row["crop"] = thumbnail_and_crop(out_dir, name, COMMITTED_AS_CROP[name])
        rows.append(row)
    # --only re-runs some entries: the others keep the rows measured before (gallery.json)
    record = os.path.join(out_dir, "gallery.json")
    if args.only and os.path.exists(record):
        with open(record) as f:
            kept = {r.get("entry", r["file"]): r for r in json.load(f)}
        kept.update({r["entry"]: r for r in rows})
        rows = [kept[name] for name, *_ in ENTRIES if name in kept]
    with open(record, "w") as f:
        json.dump(rows, f, indent=1)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, no GPU" if not args.quick else "a quick test run"
    write_pages(out_dir, rows, machine)
    for f in failed:
        print("FAILED", f, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
