"""What ``cnnvis dream`` does once its flags are parsed: build, run, draw progress, write files.

Kept apart from :mod:`cnnvis.cli` so the CLI module stays a thin flag table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import click
import numpy as np
import torch

from cnnvis.cli import interrupts
from cnnvis.cli.checkpoints import CHECKPOINT_FORMAT, RESUME_STATE  # noqa: F401 (also imported from here)
from cnnvis.cli.interrupts import begin_work
from cnnvis.cli.units import unit_label
from cnnvis.config import RenderConfig
from cnnvis.defaults import DEFAULT_LAYERS, DEFAULT_OCTAVES, DGN_DEFAULTS, DREAM_GRAD_CLIP, DREAM_L1, DREAM_L2
from cnnvis.errors import InputError
from cnnvis.objectives.activation import Channel, Dream, Guide, Neuron
from cnnvis.objectives.base import Objective, Sum
from cnnvis.objectives.spec import parse_objective

VIDEO_SIDE = 640  # longest side of progress-video frames, pixels


@dataclass
class DreamJob:
    image: str | None
    out: str
    noise: bool = False
    layers: tuple[str, ...] = ()
    channel: int | None = None
    x: int | None = None
    y: int | None = None
    objectives: tuple[str, ...] = ()
    guide: str | None = None
    reference: str | None = None
    channel_mode: str | None = None
    channel_count: int | None = None
    dream_form: str = "cnnvis"
    l1_weight: float = DREAM_L1
    l2_weight: float = DREAM_L2
    grad_clip: float = DREAM_GRAD_CLIP
    model: str = "efficientnet-lite0"
    weights: str | None = None
    device: str = "auto"
    save_every: int = 0
    checkpoint_every: int = 0
    jpeg_quality: int = 95
    zoom_frames: int = 0
    zoom_scale: float = 1.05
    video: str | None = None
    video_every: int = 1
    quiet: bool = False
    flow: str | None = None  # video input: dis, farneback or none (None: dis)
    blend: float | None = None  # video input: weight of the previous result in a frame's start (None: the default)
    temporal: float | None = None  # video input: weight of the temporal loss (None: the default)
    render_kw: dict = field(default_factory=dict)
    prior_kw: dict = field(default_factory=dict)


def guide_features(model, guide: torch.Tensor, layers, side: int) -> dict[str, torch.Tensor]:
    """Activations of a guide image (1, 3, H, W), resized to one tile, at ``layers``."""
    from cnnvis.canvas.sizes import resize
    from cnnvis.models.capture import FeatureCapture

    with FeatureCapture(model.module, layers, model_name=model.name) as cap, torch.no_grad():
        return cap(model.normalize(resize(guide, (side, side))))


def build_objective(job: DreamJob, model, device) -> Objective:
    """Turn the CLI's objective flags into one Objective."""
    from cnnvis.io.images import hwc_to_bchw, read_image

    layers = list(job.layers)
    if not layers and not job.objectives:
        if job.model not in DEFAULT_LAYERS:
            raise InputError(
                f"no default layer for model '{job.model}'; pass --layer NAME (list them: cnnvis layers {job.model})"
            )
        layers = [DEFAULT_LAYERS[job.model]]
    if (job.x is None) != (job.y is None):
        raise InputError("give both --x and --y for a neuron, or neither for the whole channel")
    if job.x is not None and job.channel is None:
        raise InputError("--x/--y select a neuron of a channel; also pass --channel C")
    if job.guide and job.channel is not None:
        raise InputError("--guide amplifies a whole layer; drop --channel")
    guide_feats = None
    if job.guide:
        guide_img = hwc_to_bchw(read_image(job.guide), device)
        wanted = layers + [
            s.split("@")[0].split(":")[1] for s in job.objectives if s.startswith("guide:") and s.count(":") >= 1
        ]
        guide_feats = guide_features(model, guide_img, wanted, model.input_size)
    terms: list[tuple[float, Objective]] = []
    channels = job_channels(job)
    if job.channel_mode and (channels or job.guide):
        raise InputError("--channel-mode picks channels of a whole-layer dream; drop --channel / --guide")
    reference = hwc_to_bchw(read_image(job.reference), device) if job.reference else None
    for layer in layers:
        if job.guide:
            terms.append((1.0, Guide(layer, guide_feats[layer])))
        elif job.channel_mode:
            picked = _picked_channels(job, model, layer, device)
            terms.append(
                (1.0, Dream(layer, job.dream_form, job.l1_weight, job.l2_weight, job.grad_clip, channels=picked))
            )
        elif channels:
            # one image per channel, rendered as one batch: image i maximizes channel i
            for i, c in enumerate(channels):
                obj: Objective = Neuron(layer, c, job.x, job.y) if job.x is not None else Channel(layer, c)
                terms.append((1.0, obj if len(channels) == 1 else obj.on(i)))
        else:
            terms.append((1.0, Dream(layer, job.dream_form, job.l1_weight, job.l2_weight, job.grad_clip)))
    for spec in job.objectives:
        w, _, obj = parse_objective(
            spec,
            dream_form=job.dream_form,
            l1_weight=job.l1_weight,
            l2_weight=job.l2_weight,
            grad_clip=job.grad_clip,
            guide_feats=guide_feats,
            reference=reference,
        )
        terms.append((w, obj))
    return terms[0][1] if len(terms) == 1 and terms[0][0] == 1.0 else Sum(terms)


def _picked_channels(job: DreamJob, model, layer: str, device) -> list[int]:
    """``--channel-mode``: the channels of ``layer`` chosen from the start image (printed: they
    are part of the result)."""
    from cnnvis.io.images import bundled_image_path, hwc_to_bchw, read_image
    from cnnvis.recipes.channels import channel_means, select_channels

    if job.noise:
        raise InputError("--channel-mode chooses channels from the start image; drop --noise or give an IMAGE")
    image = hwc_to_bchw(read_image(job.image or bundled_image_path()), device)
    picked = select_channels(
        channel_means(model, layer, image), job.channel_mode, job.channel_count, f"layer '{layer}'"
    )
    if job.channel_mode != "all":
        click.echo(f"{job.channel_mode} {len(picked)} channels of {layer}: {','.join(map(str, picked))}")
    return picked


def job_channels(job: DreamJob) -> list[int]:
    """The job's ``--channel`` as a list (a recorded manifest may hold one int)."""
    from cnnvis.cli.units import parse_units

    if job.channel is None:
        return []
    try:
        return parse_units(job.channel)
    except ValueError as e:
        raise InputError(f"bad --channel: {e}") from None


def check_alpha_output(out: str, render_kw: dict) -> None:
    """``--alpha`` writes RGBA: refuse an output that cannot hold alpha, before anything loads."""
    if render_kw.get("alpha") and os.path.splitext(out)[1].lower() != ".png":
        raise InputError(f"--alpha needs a PNG output, got '{out}'; write --out {os.path.splitext(out)[0]}.png")


def picture(canvas: torch.Tensor, mode: str, labels: list[str] | None = None) -> np.ndarray:
    """uint8 (H, W, C) of a canvas (N, C, H, W) (C = 4: RGBA): the image itself, or for a
    labelled batch a contact sheet of its images."""
    from cnnvis.io.images import contact_sheet, to_uint8

    if not labels:
        return to_uint8(canvas, mode)
    return contact_sheet([to_uint8(canvas, mode, i) for i in range(canvas.shape[0])], labels)


def _frame(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A video frame (RGB, ``size``) of a picture; an RGBA one over white."""
    import cv2

    if img.shape[2] == 4:
        a = img[:, :, 3:].astype(np.float32) / 255
        img = (img[:, :, :3] * a + 255 * (1 - a)).round().astype(np.uint8)
    return cv2.resize(
        img, (size[1], size[0]), interpolation=cv2.INTER_AREA if img.shape[0] > size[0] else cv2.INTER_CUBIC
    )


def run_job(job: DreamJob) -> int:
    """Run a dream job; return the process exit code (0, or 130 after Ctrl-C)."""
    from cnnvis.io.images import bundled_image_path, check_video_path, check_writable, hwc_to_bchw, read_image
    from cnnvis.io.video import is_video
    from cnnvis.pipeline.loop import Render

    check_alpha_output(job.out, job.render_kw)
    if job.image and is_video(job.image):
        return _dream_video(job)
    if job.flow is not None or job.blend is not None or job.temporal is not None:
        raise InputError(
            f"--flow, --blend and --temporal-weight apply to a video input, and '{job.image or 'the bundled photo'}' is an image; drop them (or give a .mp4/.gif)"
        )
    if job.zoom_frames:
        return _dream_zoom(job)
    check_writable(job.out)
    if job.video:
        check_video_path(job.video)
    if job.save_every < 0 or job.video_every < 1:
        raise InputError("--save-every must be >= 0 and --video-every >= 1")
    if job.noise and job.image:
        raise InputError(f"both an image ('{job.image}') and --noise were given; drop one")
    init = None if job.noise else hwc_to_bchw(read_image(job.image or bundled_image_path()))
    cfg, device, model, objective, prior = _load(job)
    channels = job_channels(job)
    render = Render(model, objective, cfg, init, device, prior=prior, batch=max(1, len(channels)))
    del init  # Render keeps it only while it needs it (a 4096x4096 image is 200 MB)

    labels = [unit_label(c) for c in channels] if len(channels) > 1 else None
    code, _ = run_render(
        render,
        job.out,
        cfg.output,
        quiet=job.quiet,
        save_every=job.save_every,
        video=job.video,
        video_every=job.video_every,
        checkpoint_every=job.checkpoint_every,
        jpeg_quality=job.jpeg_quality,
        labels=labels,
    )
    return code


def _dream_zoom(job: DreamJob) -> int:
    """``--zoom-frames N``: the infinite zoom (cnnvis.zoom), written as the video ``--out``."""
    from tqdm import tqdm

    from cnnvis.cli.recording import current_manifest
    from cnnvis.io.images import bundled_image_path, check_video_path, hwc_to_bchw, read_image, save_video
    from cnnvis.io.manifest import write_sidecar
    from cnnvis.pipeline.loop import Render
    from cnnvis.recipes.zoom import check_zoom, zoom_frames

    check_video_path(job.out)
    if job.noise or job.video or job.save_every or job.checkpoint_every:
        raise InputError(
            "--zoom-frames starts from an image and writes a video as --out; drop --noise, --video, --save-every and --checkpoint-every"
        )
    check_zoom(job.zoom_frames, job.zoom_scale)  # before the model loads
    cfg, device, model, objective, prior = _load(job)
    start = hwc_to_bchw(read_image(job.image or bundled_image_path())).to(device)
    begin_work()
    bar = tqdm(total=job.zoom_frames, disable=job.quiet, unit="frame", dynamic_ncols=True)
    done: list[np.ndarray] = []
    try:

        def on_frame(_i, frame):
            done.append(frame)
            bar.update(1)
            interrupts.raise_if_asked()  # between frames: the frames done are whole

        zoom_frames(
            lambda x: Render(model, objective, cfg, x, device, prior=prior),
            start,
            job.zoom_frames,
            job.zoom_scale,
            on_frame=on_frame,
        )
    except KeyboardInterrupt:
        bar.close()
        if done:
            stem, ext = os.path.splitext(job.out)
            save_video(f"{stem}.interrupted{ext}", done)
            click.echo(f"interrupted: {len(done)} frames written to {stem}.interrupted{ext}")
        return interrupts.exit_code()
    bar.close()
    save_video(job.out, done)
    manifest = current_manifest(model=model, cfg=cfg, device=device)
    if manifest is not None:
        write_sidecar(job.out, manifest)  # a video has no text chunk: the sidecar only
    if not job.quiet:
        click.echo(f"wrote {job.out} ({len(done)} frames)")
    return 0


def _dream_config(job: DreamJob) -> RenderConfig:
    kw = dict(job.render_kw)
    if (job.prior_kw.get("prior") == "dgn" or job.prior_kw.get("generator")) and kw.get("latent_lr") is None:
        kw["latent_lr"] = DGN_DEFAULTS["latent_lr"]  # the latent's units are not pixels
    sized = any(kw.get(k) is not None for k in ("octaves", "initial_size", "final_size")) or kw.get("num_sizes", 1) != 1
    if not sized and not job.zoom_frames:
        # with no sizing flag, grow through octaves up to the image size (a zoom frame instead
        # stays one short dream at the frame's size)
        kw["octaves"] = DEFAULT_OCTAVES
    return RenderConfig(**kw)


def _load(job: DreamJob):
    """(config, device, model, objective, prior) of a dream job: what every form of dream needs."""
    from cnnvis.models.registry import load_model
    from cnnvis.pipeline.loop import pick_device
    from cnnvis.priors.dgn import prior_from_flags

    cfg = _dream_config(job)
    device = pick_device(job.device)
    model = load_model(job.model, job.weights, device)
    return cfg, device, model, build_objective(job, model, device), prior_from_flags(model, job.prior_kw, device)


def _dream_video(job: DreamJob) -> int:
    """Dream every frame of a video, one at a time (:mod:`cnnvis.cli.frames`). Frame t starts
    from frame t-1's dream carried along the optical flow where the flow is reliable, and from
    its own pixels where it is not, and a temporal loss holds the carried pixels near the
    previous dream (:mod:`cnnvis.video.coherence`), so the dream holds still where the scene
    does and moves with it where it moves."""
    from cnnvis.cli.frames import FrameJob, VideoRun
    from cnnvis.io.images import hwc_to_bchw
    from cnnvis.pipeline.loop import Render
    from cnnvis.video.coherence import from_flags

    if job.noise:
        raise InputError("--noise starts from noise; a video input starts from its frames, drop one")
    if job.save_every or job.video:
        raise InputError(
            "--save-every and --video apply to one image; with a video input the output is already a video"
        )
    coherence = from_flags(job.flow, job.blend, job.temporal, "dream")
    run = VideoRun(job.image, job.out, job.checkpoint_every)  # the input and output are checked before the model loads
    cfg, device, model, objective, prior = _load(job)

    def make_render(i, frame, prev_frame, prev_out):
        start, mask, warped = coherence.start_and_carry(prev_frame, frame, prev_out)
        return Render(
            model, objective, cfg, hwc_to_bchw(start), device, prior=prior, penalties=coherence.penalties(warped, mask)
        )

    return run.run(FrameJob(make_render, model=model, cfg=cfg, device=device), job.quiet)


def _manifest(render, status: str = "complete") -> dict | None:
    """The manifest of the command running ``render`` (None outside a click command)."""
    from cnnvis.cli.recording import current_manifest

    return current_manifest(model=render.model, cfg=render.cfg, device=render.device, status=status)


def _labelled(manifest: dict | None, label: str) -> dict | None:
    """The manifest of one file of a batch render: which of the outputs it is (replay finds
    its twin by this label)."""
    return None if manifest is None else dict(manifest, output_label=label)


def checkpoint_path(out: str) -> str:
    """``dir/name.png`` -> ``dir/name.ckpt``."""
    return os.path.splitext(out)[0] + ".ckpt"


def _save_checkpoint(render, path: str, status: str) -> None:
    from cnnvis.io.checkpoint import save_sealed

    save_sealed(
        path, {"format": CHECKPOINT_FORMAT, "manifest": _manifest(render, status), "state": render.checkpoint()}
    )


def run_render(
    render,
    out: str,
    output_mode: str,
    *,
    quiet: bool = False,
    save_every: int = 0,
    video: str | None = None,
    video_every: int = 1,
    bar_desc: str = "",
    write: bool = True,
    checkpoint_every: int = 0,
    jpeg_quality: int = 95,
    labels: list[str] | None = None,
):
    """Run ``render`` with a progress bar, periodic saves, checkpoints and a progress video; write ``out``.

    ``labels``: a batch render (N images) writes ``NAME_LABEL.EXT`` for each image and a contact
    sheet ``NAME_sheet.EXT``; periodic saves, the video and an interrupted image show the sheet.

    Ctrl-C finishes the current step, then writes ``NAME.interrupted.EXT`` and the checkpoint
    ``NAME.ckpt`` (``cnnvis resume NAME.ckpt`` finishes the run bit for bit) and returns exit
    code 130; a second Ctrl-C stops at once. Returns ``(exit code, final canvas or None)``; with
    ``write=False`` the caller writes the result.
    """
    from tqdm import tqdm

    from cnnvis.io.images import labelled_path, save_image, save_video, to_uint8

    if checkpoint_every < 0:
        raise InputError(f"--checkpoint-every must be >= 0 (0 = only on Ctrl-C), got {checkpoint_every}")
    resume = RESUME_STATE.get()
    final_size = render.plan[-1]
    if labels:  # the frames show the contact sheet
        final_size = picture(torch.zeros(len(labels), 3, *final_size), output_mode, labels).shape[:2]
    scale = min(1.0, VIDEO_SIDE / max(final_size))
    video_size = (max(2, round(final_size[0] * scale)), max(2, round(final_size[1] * scale)))
    frames: list[np.ndarray] = []
    stem, ext = os.path.splitext(out)
    ck_path = checkpoint_path(out)
    total = render.total_steps
    bar = tqdm(
        total=total,
        initial=int(resume["done"]) if resume else 0,
        disable=quiet,
        unit="step",
        dynamic_ncols=True,
        leave=write,
    )
    stop = {"clean": False}

    def on_step(p):
        bar.set_description(f"{bar_desc}size {p.size_index + 1}/{p.num_sizes} {p.size[0]}x{p.size[1]}")
        bar.set_postfix(score=f"{p.score:.3g}", lr=f"{p.lr:.3g}")
        bar.update(1)
        if save_every and p.step % save_every == 0:
            save_image(
                f"{stem}_{p.size_index + 1}_{p.size_step}{ext}",
                picture(p.image(), output_mode, labels),
                quality=jpeg_quality,
            )
        if video and (p.step % video_every == 0 or p.step == p.total):
            frames.append(_frame(picture(p.image(), output_mode, labels), video_size))
        if checkpoint_every and p.step % checkpoint_every == 0 and p.step < p.total:
            _save_checkpoint(render, ck_path, f"checkpoint after step {p.step} of {p.total}")
        if interrupts.asked():
            stop["clean"] = True  # between steps: the state is whole
            raise KeyboardInterrupt

    begin_work()  # a Ctrl-C while loading: stop before the first step
    # Ctrl-C and SIGTERM are deferred to the end of the current step (cnnvis.cli.interrupts), so
    # that the image and the checkpoint written then are a consistent state.
    try:
        final = render.run(on_step, resume=resume)
    except KeyboardInterrupt:
        bar.close()
        if render.canvas is not None:
            status = f"interrupted after step {bar.n} of {bar.total}"
            path = f"{stem}.interrupted{ext}"
            save_image(
                path, picture(render.image(), output_mode, labels), _manifest(render, status), quality=jpeg_quality
            )
            click.echo(f"interrupted: current image written to {path}")
            if stop["clean"]:
                _save_checkpoint(render, ck_path, status)
                click.echo(f"checkpoint written to {ck_path}; finish the run with: cnnvis resume {ck_path}")
        if video and frames:
            save_video(video, frames)
        return interrupts.exit_code(), None
    bar.close()
    if write and labels:
        manifest = _manifest(render)
        for i, label in enumerate(labels):
            save_image(
                labelled_path(out, label),
                to_uint8(final, output_mode, i),
                _labelled(manifest, label),
                quality=jpeg_quality,
            )
        sheet = labelled_path(out, "sheet")
        save_image(sheet, picture(final, output_mode, labels), _labelled(manifest, "sheet"), quality=jpeg_quality)
        if not quiet:
            click.echo(
                f"wrote {len(labels)} images {labelled_path(out, labels[0])} ... {labelled_path(out, labels[-1])} ({final.shape[-1]}x{final.shape[-2]}) and {sheet}"
            )
    elif write:
        save_image(out, to_uint8(final, output_mode), _manifest(render), quality=jpeg_quality)
        if not quiet:
            click.echo(f"wrote {out} ({final.shape[-1]}x{final.shape[-2]})")
    if os.path.exists(ck_path) and (checkpoint_every or resume is not None):
        os.remove(ck_path)  # the run is finished: its checkpoint is spent
    if video:
        save_video(video, frames)
    return 0, final
