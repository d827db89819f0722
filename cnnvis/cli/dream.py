"""What ``cnnvis dream`` does once its flags are parsed: split them into the recipe's typed
options (:mod:`cnnvis.recipes.dream`), run, draw progress, write files."""

from __future__ import annotations

import os
from dataclasses import dataclass

import click
import numpy as np

from cnnvis.cli import interrupts
from cnnvis.cli.interrupts import begin_work
from cnnvis.cli.runner import run_render
from cnnvis.errors import InputError
from cnnvis.io.outputs import OutputOptions
from cnnvis.models.options import ModelOptions
from cnnvis.priors.spec import PriorSpec
from cnnvis.recipes.dream import DreamOptions, dream_config, dream_objective, dream_render
from cnnvis.recipes.units import unit_label
from cnnvis.video.coherence import VideoOptions


@dataclass
class DreamJob:
    """A dream command's options, split by what they are about (each group declared once)."""

    dream: DreamOptions
    model: ModelOptions
    prior: PriorSpec
    outputs: OutputOptions
    video: VideoOptions
    render_kw: dict

    @classmethod
    def from_flags(cls, kw: dict) -> DreamJob:
        """The job of the dream command's keyword arguments (what is left are render settings)."""
        kw = dict(kw)
        groups = {name: group.take(kw) for name, group in _GROUPS.items()}
        return cls(**groups, render_kw=kw)


_GROUPS = {
    "dream": DreamOptions,
    "model": ModelOptions,
    "prior": PriorSpec,
    "outputs": OutputOptions,
    "video": VideoOptions,
}


def check_alpha_output(out: str, render_kw: dict) -> None:
    """``--alpha`` and ``--alpha-from-grad`` write RGBA: refuse an output that cannot hold alpha,
    before anything loads."""
    for key, flag in (("alpha", "--alpha"), ("alpha_from_grad", "--alpha-from-grad")):
        if render_kw.get(key) and os.path.splitext(out)[1].lower() != ".png":
            raise InputError(f"{flag} needs a PNG output, got '{out}'; write --out {os.path.splitext(out)[0]}.png")


def run_dream(**kw) -> int:
    """Run the dream command; return the process exit code (0, or 130 after Ctrl-C)."""
    from cnnvis.io.video import is_video

    job = DreamJob.from_flags(kw)
    opts = job.dream
    opts.check()
    dream_config(job.render_kw, job.prior)  # the render settings' own checks (a malformed size), before loading
    check_alpha_output(opts.out, job.render_kw)
    video = bool(opts.image and is_video(opts.image))
    if job.video.given() and not video:
        raise InputError(
            f"--flow, --blend and --temporal-weight apply to a video input, and "
            f"'{opts.image or 'the bundled photo'}' is an image; drop them (or give a .mp4/.gif)"
        )
    if (table := job.model.layer_table()) is not None:
        opts.check_table(table)  # the model's layers, known without loading it
    if video:
        return _dream_video(job)
    if opts.zoom_frames:
        return _dream_zoom(job)
    return _dream_image(job)


def _tiles_per_pass(cfg, device):
    """``cfg`` with :data:`cnnvis.defaults.DREAM_BF16_BATCH` tiles per pass where the network runs in bfloat16 and
    ``--batch-size`` took its default (not typed, not a preset's, not a replayed manifest's); the value used goes
    into the command's parameters, so the manifest records it and a replay runs it."""
    from click.core import ParameterSource

    from cnnvis.defaults import DREAM_BF16_BATCH
    from cnnvis.models.compute import resolve_precision

    ctx = click.get_current_context(silent=True)
    if ctx is None or ctx.get_parameter_source("batch_size") is not ParameterSource.DEFAULT:
        return cfg
    import torch

    if resolve_precision(cfg.precision, device) != torch.bfloat16:
        return cfg
    ctx.params["batch_size"] = DREAM_BF16_BATCH
    return cfg.replace(batch_size=DREAM_BF16_BATCH)


def _start_image(opts: DreamOptions):
    """(1, 3, H, W) in [0, 1]: the image to dream on (the bundled photo by default), or None for noise."""
    from cnnvis.io.images import bundled_image_path, hwc_to_bchw, read_image

    return None if opts.noise else hwc_to_bchw(read_image(opts.image or bundled_image_path()))


def _load(job: DreamJob, start=None, zoom: bool = False):
    """(config, device, model, objective, prior) of a dream job: what every form of dream needs."""
    from cnnvis.models.registry import load_model
    from cnnvis.pipeline.device import pick_device

    cfg = dream_config(job.render_kw, job.prior, zoom=zoom)
    device = pick_device(job.model.device)
    cfg = _tiles_per_pass(cfg, device)
    model = load_model(job.model.model, job.model.weights, device)
    if start is None and job.dream.channel_mode:
        start = _start_image(job.dream)
    objective, picked = dream_objective(job.dream, model, device, None if start is None else start.to(device))
    for layer, channels in picked.items():
        if job.dream.channel_mode != "all":  # printed: the channels are part of the result
            click.echo(f"{job.dream.channel_mode} {len(channels)} channels of {layer}: {','.join(map(str, channels))}")
    from cnnvis.priors.dgn import prior_of

    return cfg, device, model, objective, prior_of(job.prior, model, device)


def _dream_image(job: DreamJob) -> int:
    from cnnvis.io.images import check_video_path, check_writable

    opts = job.dream
    check_writable(opts.out)
    if job.outputs.video:
        check_video_path(job.outputs.video)
    init = _start_image(opts)
    cfg, device, model, objective, prior = _load(job, init)
    channels = opts.channels()
    render = dream_render(model, objective, cfg, init, device, prior, batch=max(1, len(channels)))
    del init  # Render keeps it only while it needs it (a 4096x4096 image is 200 MB)
    labels = [unit_label(c) for c in channels] if len(channels) > 1 else None
    code, _ = run_render(render, opts.out, job.outputs, labels=labels)
    return code


def _dream_zoom(job: DreamJob) -> int:
    """``--zoom-frames N``: the infinite zoom (:mod:`cnnvis.recipes.zoom`), written as the video ``--out``."""
    from cnnvis.cli.progress import bar
    from cnnvis.cli.recording import current_manifest
    from cnnvis.io.images import check_video_path, save_video
    from cnnvis.recipes.zoom import check_zoom, zoom_frames

    opts, outputs = job.dream, job.outputs
    check_video_path(opts.out)
    if opts.noise or outputs.video or outputs.save_every or outputs.checkpoint_every:
        raise InputError(
            "--zoom-frames starts from an image and writes a video as --out; "
            "drop --noise, --video, --save-every and --checkpoint-every"
        )
    check_zoom(opts.zoom_frames, opts.zoom_scale)  # before the model loads
    start = _start_image(opts)
    cfg, device, model, objective, prior = _load(job, start, zoom=True)
    begin_work()
    progress = bar(opts.zoom_frames, unit="frame", quiet=outputs.quiet)
    done: list[np.ndarray] = []

    def on_frame(_i, frame):
        done.append(frame)
        progress.update(1)
        interrupts.raise_if_asked()  # between frames: the frames done are whole

    def render_at(x):
        return dream_render(model, objective, cfg, x, device, prior)

    try:
        zoom_frames(render_at, start.to(device), opts.zoom_frames, opts.zoom_scale, on_frame=on_frame)
    except KeyboardInterrupt:
        progress.close()
        if done:
            stem, ext = os.path.splitext(opts.out)
            status = f"interrupted after {len(done)} of {opts.zoom_frames} frames"
            manifest = current_manifest(model=model, cfg=cfg, device=device, status=status)
            save_video(f"{stem}.interrupted{ext}", done, manifest=manifest)
            click.echo(f"interrupted: {len(done)} frames written to {stem}.interrupted{ext}")
        return interrupts.exit_code()
    progress.close()
    save_video(opts.out, done, manifest=current_manifest(model=model, cfg=cfg, device=device))
    if not outputs.quiet:
        click.echo(f"wrote {opts.out} ({len(done)} frames)")
    return 0


def _dream_video(job: DreamJob) -> int:
    """Dream every frame of a video, one at a time (:mod:`cnnvis.recipes.frames`). Frame t starts
    from frame t-1's dream carried along the optical flow where the flow is reliable, and from
    its own pixels where it is not, and a temporal loss holds the carried pixels near the
    previous dream (:mod:`cnnvis.video.coherence`), so the dream holds still where the scene
    does and moves with it where it moves."""
    from cnnvis.cli.frames import FrameJob, VideoRun, job_manifest, run_video
    from cnnvis.io.images import hwc_to_bchw
    from cnnvis.recipes.video import DREAM_COHERENCE

    opts = job.dream
    if opts.noise:
        raise InputError("--noise starts from noise; a video input starts from its frames, drop one")
    if job.outputs.save_every or job.outputs.video:
        raise InputError(
            "--save-every and --video apply to one image; with a video input the output is already a video"
        )
    coherence = job.video.coherence(DREAM_COHERENCE)
    # the input and output are checked before the model loads
    run = VideoRun(opts.image, opts.out, job.outputs.checkpoint_every)
    cfg, device, model, objective, prior = _load(job)

    def make_render(i, frame, prev_frame, prev_out):
        start, mask, warped = coherence.start_and_carry(prev_frame, frame, prev_out)
        penalties = coherence.penalties(warped, mask)
        return dream_render(model, objective, cfg, hwc_to_bchw(start), device, prior, penalties=penalties)

    return run_video(run, FrameJob(make_render, cfg, job_manifest(model, device)), job.outputs.quiet)
