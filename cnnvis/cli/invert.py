"""What ``cnnvis invert`` does once its flags are parsed: split them into the recipe's typed
options (:mod:`cnnvis.recipes.invert`), run, print the quality, write files."""

from __future__ import annotations

import json
import os

import click
import numpy as np

from cnnvis.cli.dream import check_alpha_output
from cnnvis.cli.runner import run_render
from cnnvis.errors import InputError
from cnnvis.io.outputs import OutputOptions
from cnnvis.models.options import ModelOptions
from cnnvis.priors.spec import PriorSpec
from cnnvis.recipes.invert import InvertOptions, features_inversion, fresh_start, image_inversion, inversion
from cnnvis.recipes.options import given
from cnnvis.video.coherence import VideoOptions


def run_invert(**kw) -> int:
    """Run the invert command; return the process exit code."""
    from cnnvis.io.images import check_video_path, check_writable, read_image
    from cnnvis.io.video import is_video

    opts, model_opts, prior, outputs, video = (g.take(kw) for g in _GROUPS)
    opts.check()
    check_alpha_output(opts.out, kw)
    if outputs.video:
        check_video_path(outputs.video)
    video_run = _video_run(opts, outputs, video) if opts.image is not None and is_video(opts.image) else None
    if video_run is None:
        _check_image_outputs(opts, video)
        check_writable(opts.out)
    if (table := model_opts.layer_table()) is not None:
        table.check_layers(opts.layers)  # the model's layers, known without loading it
    inv = _inversion(opts, model_opts, prior, kw)
    if video_run is not None:
        return _invert_video(inv, *video_run, outputs.quiet)
    if opts.features is not None:
        r, ref, layers = features_inversion(inv)
    else:
        r, ref, layers = image_inversion(inv, read_image(opts.image))
    _note_default_prior(r, prior, outputs.quiet)
    code, final = run_render(r, opts.out, outputs)
    if code == 0 and ref is not None:
        _report_quality(inv.model, final, ref, layers, opts.out)
    return code


_GROUPS = (InvertOptions, ModelOptions, PriorSpec, OutputOptions, VideoOptions)


def _inversion(opts: InvertOptions, model_opts: ModelOptions, prior: PriorSpec, render_kw: dict):
    from cnnvis.models.registry import load_model
    from cnnvis.pipeline.device import pick_device
    from cnnvis.priors.dgn import prior_of

    device = pick_device(model_opts.device)
    model = load_model(model_opts.model, model_opts.weights, device)
    return inversion(opts, model, device, prior_of(prior, model, device, layer_default=True), given(render_kw))


def _note_default_prior(render, prior: PriorSpec, quiet: bool) -> None:
    """Say so when ``--prior auto`` chose the generator: the picture is the generator's, and
    ``--prior none`` gives the pixel priors'."""
    from cnnvis.params.generator import GeneratorStages

    if prior.prior == "auto" and not prior.wanted and isinstance(render.stages, GeneratorStages) and not quiet:
        click.echo(
            "note: layers this deep invert through the shipped generator (the DGN prior, --prior auto); "
            "--prior none inverts on pixels",
            err=True,
        )


def _check_image_outputs(opts: InvertOptions, video: VideoOptions) -> None:
    """An image or features input: no video flags, and no video output."""
    from cnnvis.io.video import is_video

    if video.given():
        raise InputError(
            f"--flow, --blend and --temporal-weight apply to a video input, and '{opts.image or opts.features}' "
            "is not one; drop them (or give a .mp4/.gif)"
        )
    if is_video(opts.out):
        raise InputError(f"--out '{opts.out}' is a video; invert a video input, or write an image (.png)")


def _video_run(opts: InvertOptions, outputs: OutputOptions, video: VideoOptions):
    """(the frame loop, the coherence) of a video input, checked before the model loads."""
    from cnnvis.cli.frames import VideoRun
    from cnnvis.recipes.video import INVERT_COHERENCE

    if opts.video_init == "noise" and (video.flow is not None or video.temporal):
        raise InputError(
            "--video-init noise starts every frame afresh, so there is nothing to carry along a --flow; drop one"
        )
    coherence = video.coherence(INVERT_COHERENCE)
    return VideoRun(opts.image, opts.out, outputs.checkpoint_every), coherence


def _report_quality(model, final, original: np.ndarray, layers, out: str) -> dict:
    """Measure the reconstruction ``final`` (1, 3, H, W) against ``original`` (H x W x 3 in [0, 1]),
    write OUT.metrics.json and print the figures (even with --quiet: they are the result)."""
    from cnnvis.io.files import write_text_atomic
    from cnnvis.io.images import hwc_to_bchw
    from cnnvis.recipes.metrics import quality
    from cnnvis.recipes.recon import to_hwc

    q = quality(model, hwc_to_bchw(to_hwc(final)), hwc_to_bchw(original), layers)
    q["layers"] = list(layers)
    path = os.path.splitext(out)[0] + ".metrics.json"
    write_text_atomic(path, json.dumps(q, indent=1))
    fe = "  ".join(f"{k} {v:.3f}" for k, v in q["feature_error"].items())
    click.echo(
        f"pixel correlation {q['pixel_correlation']:.3f}  SSIM {q['ssim']:.3f}  Lab error {q['lab_error']:.1f}  "
        f"feature error {fe}  ({path})"
    )
    return q


def _invert_video(inv, run, coherence, quiet: bool) -> int:
    """Invert every frame (icnn's movie reconstructions), one at a time (:mod:`cnnvis.recipes.frames`).
    With ``--video-init previous`` frame t starts from frame t-1's reconstruction carried along the
    optical flow between the two input frames (:mod:`cnnvis.video.coherence`), which keeps the
    sequence steady and converges faster; pixels the flow cannot carry (newly uncovered ones)
    start as a fresh frame would, from the ``--init`` image or the model's mean colour."""
    from cnnvis.cli.frames import FrameJob, job_manifest, run_video
    from cnnvis.io.images import hwc_to_bchw
    from cnnvis.recipes.invert import resize_hwc
    from cnnvis.recipes.metrics import pixel_correlation
    from cnnvis.recipes.options import parse_size

    corr: list[float] = []
    refs: dict[int, np.ndarray] = {}

    def make_render(i, frame, prev_frame, prev_out):
        size = inv.opts.size or "fit"  # a clip keeps its aspect ratio unless --size says otherwise
        ref = refs[i] = resize_hwc(frame, parse_size(size, inv.model, frame.shape[:2]))
        refs.pop(i - 1, None)
        if prev_out is None or inv.opts.video_init != "previous":
            return image_inversion(inv, ref, size=size)[0]
        hw = ref.shape[:2]
        carried = coherence.start_and_carry(resize_hwc(prev_frame, hw), ref, prev_out, fallback=fresh_start(inv, hw))
        start, mask, warped = carried
        return image_inversion(inv, ref, start=start, penalties=coherence.penalties(warped, mask), size=size)[0]

    def describe(i, frame, result):
        corr.append(pixel_correlation(hwc_to_bchw(result), hwc_to_bchw(refs[i])))
        return f"pixel correlation {corr[-1]:.3f}"

    def summary():
        return f"mean pixel correlation over the {len(corr)} frames rendered: {np.mean(corr):.3f}" if corr else None

    manifest = job_manifest(inv.model, inv.common["device"])
    return run_video(run, FrameJob(make_render, manifest=manifest, describe=describe, summary=summary), quiet)
