"""The ``cnnvis`` command line: builds a config, calls the library, draws progress, writes files.

Bad input ends with one line on stderr naming the value and the fix, exit code 2. Ctrl-C (or
SIGTERM) writes the current image beside the output (``NAME.interrupted.EXT``) and exits 130
(143); before the first step there is nothing to write, and it exits without a traceback.
"""

from __future__ import annotations

import functools
import sys

import click

from cnnvis.cli import interrupts
from cnnvis.cli.interrupts import DeferredInterrupt
from cnnvis.cli.options import (
    dgn_refine_option,
    model_options,
    output_options,
    prior_options,
    render_options,
    video_options,
)  # noqa: F401 (re-exported)
from cnnvis.cli.presets import preset_option
from cnnvis.cli.units import UNITS
from cnnvis.defaults import (
    CHANNEL_MODES,
    DGN_INVERT_REFINE,
    DGN_PREFER_REFINE,
    DREAM_GRAD_CLIP,
    DREAM_L1,
    DREAM_L2,
    GENERATOR_GRID_WEIGHT,
    GENERATOR_UPSAMPLE,
    UNIT_KINDS,
)
from cnnvis.errors import EXIT_BAD_INPUT, InputError

TRUST_HELP = (
    "Load a recorded model that runs code of its own (a Python factory, a TorchScript or Caffe file); "
    "without it such a file is refused, naming what it would load."
)


def _fail(msg: str) -> None:
    click.echo(f"Error: {msg}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def friendly_errors(fn):
    """Turn :class:`InputError` into one line on stderr and exit code 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with DeferredInterrupt():
                from cnnvis.cli.guards import check_outputs_are_not_inputs

                check_outputs_are_not_inputs(kwargs)
                return fn(*args, **kwargs)
        except InputError as e:
            _fail(str(e))
        except OSError as e:
            # a write that failed outside cnnvis's own writers (a library writing a file itself);
            # only errors no read can cause, so a missing input still shows what went wrong
            import errno

            from cnnvis.io.files import write_error

            disk = e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)
            err = write_error(e.filename, e) if e.filename and disk else None
            if err is None:
                raise
            _fail(str(err))
        except KeyboardInterrupt:
            # Before the first step (loading, probing): there is no image to save yet.
            click.echo("interrupted before the first step; nothing written", err=True)
            sys.exit(interrupts.exit_code())

    return wrapper


class _OneLineErrors(click.Group):
    """Click's own usage errors (a flag's bad value or type, an unknown flag) as one line and exit
    code 2, like every other bad input, instead of click's three-line usage block."""

    def main(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except getattr(click.exceptions, "NoArgsIsHelpError", ()) as e:  # plain `cnnvis`: the help
            click.echo(e.ctx.get_help())
            sys.exit(0)
        except click.UsageError as e:
            where = f" (see: {e.ctx.command_path} --help)" if e.ctx is not None else ""
            _fail(e.format_message().replace("\n", " ") + where)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.exceptions.Abort:  # Ctrl-C outside a command (while click parses): nothing started
            click.echo("interrupted; nothing written", err=True)
            sys.exit(interrupts.exit_code())


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="cnnvis")
def main():
    """Deep dream, preferred images and feature inversion with CNNs, at any resolution."""


@main.command()
@preset_option
@click.argument("image", required=False)
@click.option("--out", "-o", default="dream.png", show_default=True, help="Output image (.png, .jpg, ...).")
@click.option("--noise", is_flag=True, help="Start from noise instead of an image.")
@click.option(
    "--layer",
    "-l",
    "layers",
    multiple=True,
    help="Layer to amplify (repeatable) [default: blocks.4.2 on efficientnet-lite*].",
)
@click.option(
    "--channel",
    "-c",
    type=UNITS,
    default=None,
    help="Amplify this channel of --layer instead of the whole layer; a list or range (0,5,9 or 0-15) renders one image per channel in one batch, NAME_c5.png each, plus NAME_sheet.png.",
)
@click.option("--x", "nx", type=int, default=None, help="With --channel: one neuron at this feature-map column.")
@click.option("--y", "ny", type=int, default=None, help="With --channel: one neuron at this feature-map row.")
@click.option(
    "--objective",
    "-O",
    "objectives",
    multiple=True,
    help="KIND:LAYER[:ARGS][@WEIGHT], repeatable: dream:L, channel:L:C, neuron:L:C[:X:Y], guide:L, direction:L:FILE.npy, direction-neuron:L:FILE.npy[:X:Y], direction-cossim:L:FILE.npy[:POWER], caricature:L[:POWER].",
)
@click.option("--guide", default=None, help="Guide image: amplify the features it has (at each --layer).")
@click.option("--reference", default=None, help="The reference image of caricature:LAYER objectives.")
@click.option(
    "--channel-mode",
    type=click.Choice(CHANNEL_MODES),
    default=None,
    help="Dream only --channel-count channels of each --layer: those the image excites most (strongest), least (weakest) or closest to the average (neural-dream's channel modes).",
)
@click.option("--channel-count", type=click.IntRange(1), default=None, help="With --channel-mode: how many channels.")
@click.option(
    "--dream-form",
    type=click.Choice(["cnnvis", "meansquare"]),
    default="cnnvis",
    show_default=True,
    help="Layer amplification: cnn-vis's l1/l2/clip or Google's mean square.",
)
@click.option(
    "--l1-weight", type=float, default=DREAM_L1, show_default=True, help="cnn-vis amplification: weight of |a|."
)
@click.option(
    "--l2-weight", type=float, default=DREAM_L2, show_default=True, help="cnn-vis amplification: weight of clip(a)."
)
@click.option(
    "--grad-clip", type=float, default=DREAM_GRAD_CLIP, show_default=True, help="cnn-vis amplification: clip of a."
)
@click.option(
    "--zoom-frames",
    type=int,
    default=0,
    help="Infinite zoom: dream this many frames, each zoomed into the last; --out is a .gif or .mp4.",
)
@click.option(
    "--zoom-scale", type=float, default=1.05, show_default=True, help="Infinite zoom: magnification per frame."
)
@video_options(blend_default="0.85; 0.5 with --flow none", temporal_default="10; 0 with --flow none")
@model_options
@render_options(command="dream")
@prior_options
@output_options
@friendly_errors
def dream(
    image,
    out,
    noise,
    layers,
    channel,
    nx,
    ny,
    objectives,
    guide,
    reference,
    channel_mode,
    channel_count,
    dream_form,
    l1_weight,
    l2_weight,
    grad_clip,
    zoom_frames,
    zoom_scale,
    flow,
    blend,
    temporal,
    model,
    weights,
    device,
    save_every,
    checkpoint_every,
    jpeg_quality,
    video,
    video_every,
    quiet,
    **render_kw,
):
    """Dream on IMAGE (default: a bundled photo) and write --out.

    \b
    Examples:
      cnnvis dream --out dream.png
      cnnvis dream photo.jpg --layer blocks.5.0 --octaves 5 --steps 20 --out big.png
      cnnvis dream --noise --channel 7 --layer blocks.5.0 --out channel7.png
      cnnvis dream photo.jpg --final-size 4096x4096 --out huge.png
      cnnvis dream clip.mp4 --octaves 2 --steps 10 --out dreamed.mp4
    """
    from cnnvis.cli.dream import DreamJob, run_job
    from cnnvis.priors.dgn import split_prior_flags

    prior_kw = split_prior_flags(render_kw)
    job = DreamJob(
        image=image,
        out=out,
        noise=noise,
        layers=layers,
        channel=channel,
        x=nx,
        y=ny,
        objectives=objectives,
        guide=guide,
        reference=reference,
        channel_mode=channel_mode,
        channel_count=channel_count,
        dream_form=dream_form,
        l1_weight=l1_weight,
        l2_weight=l2_weight,
        grad_clip=grad_clip,
        model=model,
        weights=weights,
        device=device,
        save_every=save_every,
        checkpoint_every=checkpoint_every,
        jpeg_quality=jpeg_quality,
        video=video,
        video_every=video_every,
        quiet=quiet,
        render_kw=render_kw,
        prior_kw=prior_kw,
        zoom_frames=zoom_frames,
        zoom_scale=zoom_scale,
        flow=flow,
        blend=blend,
        temporal=temporal,
    )
    sys.exit(run_job(job))


@main.command()
@preset_option
@click.argument("image", required=False)
@click.option(
    "--features", "-f", default=None, help="Target features (.npz / .npy / .mat keyed by layer) instead of an IMAGE."
)
@click.option(
    "--layer",
    "-l",
    "layers",
    multiple=True,
    help="Layer to invert (repeatable); with --features, the arrays to use [default: all].",
)
@click.option(
    "--out",
    "-o",
    default="recon.png",
    show_default=True,
    help="Output image, or a video (.mp4/.gif) for a video input.",
)
@click.option(
    "--loss",
    type=click.Choice(["l2", "l1", "inner", "gram", "corr"]),
    default="l2",
    show_default=True,
    help="Feature distance.",
)
@click.option(
    "--size",
    default=None,
    help="model (the model input, square) [default], image (the image's own size, tiled), or HxW.",
)
@click.option(
    "--activation",
    type=click.Choice(["pre", "post"]),
    default="pre",
    show_default=True,
    help="Match features before or after the layer's activation.",
)
@click.option(
    "--init", "init", default="noise", show_default=True, help="Start from noise, mean (grey), or an image file."
)
@click.option("--original", default=None, help="With --features: the image they came from, to measure quality.")
@click.option(
    "--layer-weight", "layer_weights", multiple=True, help="LAYER=W (repeatable) [default: 1/||f||^2, normalized]."
)
@click.option("--channels", multiple=True, help="LAYER=C1,C2,... match only these channels (repeatable).")
@click.option(
    "--mask",
    "masks",
    multiple=True,
    help="LAYER=FILE.npy: weight the layer's features by this mask, of the feature shape, (H, W) or (C,) (repeatable).",
)
@click.option(
    "--video-init",
    type=click.Choice(["previous", "noise"]),
    default="previous",
    show_default=True,
    help="Video input: start each frame from the previous reconstruction, or afresh.",
)
@dgn_refine_option(DGN_INVERT_REFINE)
@video_options(blend_default="1", temporal_default="0")
@model_options
@render_options(command="invert")
@prior_options
@output_options
@friendly_errors
def invert(
    image,
    features,
    layers,
    out,
    loss,
    size,
    activation,
    init,
    original,
    layer_weights,
    channels,
    masks,
    video_init,
    dgn_refine,
    flow,
    blend,
    temporal,
    model,
    weights,
    device,
    save_every,
    checkpoint_every,
    jpeg_quality,
    video,
    video_every,
    quiet,
    **render_kw,
):
    """Reconstruct an image from CNN features (icnn): of IMAGE, of each frame of a video, or from --features.

    Quality against the original (pixel correlation, SSIM, feature error per layer) is printed
    and written to OUT.metrics.json whenever the original is known. Render flags left out take
    the tuned inversion defaults (200 steps; L-BFGS on the Fourier image up to stride 16, Adam
    on pixels deeper; see cnnvis.recipes.recon).

    \b
    Examples:
      cnnvis invert photo.jpg --layer blocks.3 --out recon.png
      cnnvis invert photo.jpg --layer blocks.1 --size image --out big.png
      cnnvis invert --features decoded.npz --out recon.png
      cnnvis invert clip.mp4 --layer blocks.2 --steps 100 --out recon.mp4
    """
    from cnnvis.cli.recon import run_invert

    sys.exit(
        run_invert(
            image,
            features,
            layers,
            out,
            loss=loss,
            size=size,
            activation=activation,
            init=init,
            original=original,
            layer_weights=layer_weights,
            channels=channels,
            masks=masks,
            video_init=video_init,
            dgn_refine=dgn_refine,
            flow=flow,
            blend=blend,
            temporal=temporal,
            model=model,
            weights=weights,
            device=device,
            save_every=save_every,
            checkpoint_every=checkpoint_every,
            jpeg_quality=jpeg_quality,
            video=video,
            video_every=video_every,
            quiet=quiet,
            render_kw=render_kw,
        )
    )


@main.command()
@preset_option
@click.option("--layer", "-l", default=None, help="The layer of the unit (with --channel).")
@click.option(
    "--channel",
    "-c",
    type=UNITS,
    default=None,
    help="Channel (or fully connected unit) index; a list or range (0,5,9 or 0-15) renders one image per unit in one batch, NAME_c5.png each, plus NAME_sheet.png.",
)
@click.option("--x", "nx", type=int, default=None, help="Unit column in the feature map [default: centre].")
@click.option("--y", "ny", type=int, default=None, help="Unit row in the feature map [default: centre].")
@click.option("--whole-channel", is_flag=True, help="Maximize the channel at every position instead of one unit.")
@click.option("--rf-mask", is_flag=True, help="Change only the unit's receptive field (cnnpref, for lower layers).")
@click.option("--size", default=None, help="Image size: model (the model input) [default] or HxW.")
@click.option(
    "--activation",
    type=click.Choice(["pre", "post"]),
    default="pre",
    show_default=True,
    help="Maximize the unit before or after its activation.",
)
@click.option(
    "--objective",
    "-O",
    "objectives",
    multiple=True,
    help="KIND:LAYER[:ARGS][@WEIGHT], repeatable, on every image: direction:L:FILE.npy, direction-neuron:L:FILE.npy[:X:Y], direction-cossim:L:FILE.npy[:POWER], caricature:L[:POWER] (with --reference), channel:L:C, neuron:L:C[:X:Y], dream:L.",
)
@click.option("--reference", default=None, help="The reference image of caricature:LAYER objectives.")
@click.option(
    "--batch",
    type=click.IntRange(1),
    default=None,
    help="Images rendered together (with --diversity or --interpolate) [default: one per --channel].",
)
@click.option(
    "--diversity",
    type=click.FloatRange(0),
    default=0.0,
    help="Weight of the diversity term (lucid): the --batch images differ in their Gram matrices at the objective's layer.",
)
@click.option(
    "--interpolate",
    default=None,
    help="LAYER:A:B: image i of --batch N maximizes (1 - t) channel A + t channel B, t = i / (N - 1); writes each frame, a sheet and NAME.gif.",
)
@click.option(
    "--alignment",
    type=click.FloatRange(0),
    default=0.0,
    help="Weight of the alignment term (lucid): neighbouring images' activations at the objective's layer agree.",
)
@click.option("--out", "-o", default="pref.png", show_default=True, help="Output image.")
@dgn_refine_option(DGN_PREFER_REFINE)
@model_options
@render_options(command="prefer")
@prior_options
@output_options
@friendly_errors
def prefer(
    layer,
    channel,
    nx,
    ny,
    whole_channel,
    rf_mask,
    size,
    activation,
    objectives,
    reference,
    batch,
    diversity,
    interpolate,
    alignment,
    out,
    dgn_refine,
    model,
    weights,
    device,
    save_every,
    checkpoint_every,
    jpeg_quality,
    video,
    video_every,
    quiet,
    **render_kw,
):
    """Generate the preferred image of a unit (cnnpref) or of a whole channel.

    Render flags left out take the tuned defaults (a decorrelated Fourier image with
    transformation robustness; see cnnvis.recon).

    \b
    Examples:
      cnnvis prefer --layer blocks.4 --channel 5 --out pref.png
      cnnvis prefer --layer blocks.1 --channel 3 --rf-mask --out low.png
      cnnvis prefer --layer classifier --channel 285 --out cat.png
      cnnvis prefer -O direction:blocks.4:dir.npy --out direction.png
      cnnvis prefer --layer blocks.4 --channel 5 --whole-channel --batch 4 --diversity 50 --out diverse.png
      cnnvis prefer --interpolate blocks.4:5:42 --batch 6 --alignment 1 --out morph.png
      cnnvis prefer -O caricature:blocks.3 --reference photo.jpg --out caricature.png
    """
    from cnnvis.cli.recon import run_prefer

    sys.exit(
        run_prefer(
            layer,
            channel,
            nx,
            ny,
            whole_channel,
            rf_mask,
            size,
            activation,
            out,
            model=model,
            weights=weights,
            device=device,
            objectives=objectives,
            reference=reference,
            batch=batch,
            diversity=diversity,
            interpolate=interpolate,
            alignment=alignment,
            dgn_refine=dgn_refine,
            save_every=save_every,
            checkpoint_every=checkpoint_every,
            jpeg_quality=jpeg_quality,
            video=video,
            video_every=video_every,
            quiet=quiet,
            render_kw=render_kw,
        )
    )


@main.command()
@preset_option
@click.argument("model_arg", metavar="[MODEL]", required=False)
@click.option("--layer", "-l", "layers", multiple=True, required=True, help="Layer whose units to render (repeatable).")
@click.option(
    "--units",
    default=None,
    help="Units to render: a list or ranges (0-255, 0,5,9) [default: every unit of each layer].",
)
@click.option(
    "--kind",
    type=click.Choice(UNIT_KINDS),
    default="channel",
    show_default=True,
    help="channel: the whole channel; neuron: its centre unit.",
)
@click.option(
    "--activation",
    type=click.Choice(["pre", "post"]),
    default="pre",
    show_default=True,
    help="Maximize units before or after the layer's activation.",
)
@click.option("--size", default=None, help="Image size: model (the model input) [default] or HxW.")
@click.option(
    "--out", "-o", required=True, help="Atlas directory: one image per unit, contact sheets, atlas.json, index.html."
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="local",
    default=None,
    help="Render on Ray: --ray alone starts a local runtime, --ray ADDRESS joins a cluster (ray://HOST:10001 or auto). Needs the ray extra.",
)
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=None,
    help="With --ray: the number of workers (each loads the model once) [default: 1 locally].",
)
@click.option(
    "--force",
    is_flag=True,
    help="Render every unit again, over an atlas in --out (one made with other settings included).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@model_options
@render_options(command="prefer")
@prior_options
@click.pass_context
@friendly_errors
def atlas(
    ctx,
    model_arg,
    layers,
    units,
    kind,
    activation,
    size,
    out,
    ray_address,
    workers,
    force,
    quiet,
    model,
    weights,
    device,
    **render_kw,
):
    """Render the preferred image of every unit of one or more layers into an atlas directory.

    Units are rendered in batches (--batch-size units, one image each, in one forward pass), each
    from its own seed (run seed, layer, unit), so a unit's image does not depend on the worker
    that renders it. Every image is written as it arrives; a rerun of the same command skips the
    units already there; Ctrl-C finishes the batches in flight and exits 130. The directory
    holds index.html, a page to browse the atlas with no server. Render flags left out take the
    preferred-image defaults of prefer.

    \b
    Examples:
      cnnvis atlas --layer blocks.4 --out atlas/
      cnnvis atlas --layer blocks.4 --units 0-15 --steps 64 --out atlas/
      cnnvis atlas --layer blocks.4 --layer blocks.5 --ray --workers 2 --out atlas/
      cnnvis atlas --layer blocks.4 --ray ray://head-node:10001 --workers 16 --device cuda --out atlas/
    """
    from cnnvis.cli.atlas import run_atlas
    from cnnvis.priors.dgn import split_prior_flags

    prior_kw = split_prior_flags(render_kw)
    sys.exit(
        run_atlas(
            ctx,
            model=model_arg or model,
            weights=weights,
            device=device,
            layers=layers,
            units=units,
            kind=kind,
            activation=activation,
            size=size,
            out=out,
            ray_address=ray_address,
            workers=workers,
            force=force,
            quiet=quiet,
            render_kw=render_kw,
            prior_kw=prior_kw,
        )
    )


@main.command()
@click.argument("image")
@click.option("--out", "-o", default=None, help="Where to write the re-run [default: NAME.replay.EXT].")
@click.option("--check", is_flag=True, help="Exit 1 unless the re-run equals IMAGE pixel for pixel.")
@click.option("--trust-model", is_flag=True, help=TRUST_HELP)
@click.pass_context
@friendly_errors
def replay(ctx, image, out, check, trust_model):
    """Run again the command recorded in IMAGE's manifest (its PNG text chunk or NAME.manifest.json).

    Replaying is as safe as viewing: the recorded values are data. A model that runs code of its
    own (a Python factory, a TorchScript or Caffe file) loads only with --trust-model, and every
    file is written beside --out (default: beside IMAGE), whatever paths the manifest names.

    \b
    Example:
      cnnvis replay dream.png --check
    """
    from cnnvis.cli.replay import run_replay

    sys.exit(run_replay(ctx, image, out, check, trust_model))


@main.command()
@click.argument("checkpoint")
@click.option(
    "--out",
    "-o",
    default=None,
    help="Where to write the result [default: beside CHECKPOINT, named as the run's --out].",
)
@click.option("--trust-model", is_flag=True, help=TRUST_HELP)
@click.pass_context
@friendly_errors
def resume(ctx, checkpoint, out, trust_model):
    """Finish a run from its CHECKPOINT (NAME.ckpt, written on Ctrl-C or by --checkpoint-every).

    The result equals the uninterrupted run's bit for bit on CPU with the same versions.

    \b
    Example:
      cnnvis dream photo.jpg --final-size 3840x2160 --checkpoint-every 20 --out big.png   # Ctrl-C
      cnnvis resume big.ckpt
    """
    from cnnvis.cli.replay import run_resume

    sys.exit(run_resume(ctx, checkpoint, out, trust_model))


@main.command("convert-caffe")
@preset_option
@click.argument("prototxt")
@click.argument("caffemodel")
@click.option("--out", "-o", required=True, help="PyTorch file to write (.pt).")
@click.option(
    "--generator",
    default=None,
    is_flag=False,
    flag_value="auto",
    help="Convert a DeePSiM generator (release_deepsim_v0) instead of a classifier: auto, or deepsim-fc6, -fc7, -fc8, -pool5, -conv3, -conv4, -norm1, -norm2.",
)
@click.option("--mean", default=None, help="Classifier: the BGR mean on 0..255 as B,G,R [default: 104,117,123].")
@click.option(
    "--input-size",
    type=click.IntRange(1),
    default=None,
    help="Classifier: input side in pixels [default: the prototxt's].",
)
@click.option(
    "--latent-bound", default=None, help="Generator: store these per-channel latent upper bounds (.txt or .npy)."
)
@click.option("--quiet", "-q", is_flag=True, help="No summary line.")
@friendly_errors
def convert_caffe(prototxt, caffemodel, out, generator, mean, input_size, latent_bound, quiet):
    """Convert a Caffe net (deploy PROTOTXT + CAFFEMODEL) to PyTorch, with no Caffe install.

    \b
    Examples:
      cnnvis convert-caffe bvlc_alexnet/deploy.prototxt bvlc_alexnet.caffemodel --out alexnet.pt
      cnnvis prefer --model alexnet.pt --layer fc8 --channel 285 --out cat.png
      cnnvis convert-caffe fc6/generator.prototxt fc6/generator.caffemodel --generator --out fc6.pt
      cnnvis prefer --model alexnet.pt --layer fc8 --channel 285 --prior dgn --generator fc6.pt --out cat_dgn.png
    """
    from cnnvis.cli.caffe import run_convert_caffe

    sys.exit(run_convert_caffe(prototxt, caffemodel, out, generator, mean, input_size, latent_bound, quiet))


@main.command("train-generator")
@preset_option
@click.option(
    "--layer",
    "-l",
    required=True,
    help="The layer to invert (a spatial layer, e.g. blocks.5.0.bn1 on efficientnet-lite0).",
)
@click.option("--images", required=True, help="Folder of training photos (.jpg/.png).")
@click.option("--out", "-o", required=True, help="Generator file to write (.pt); its checkpoint is OUT.ckpt.")
@click.option(
    "--steps",
    type=click.IntRange(1),
    default=2000,
    show_default=True,
    help="Training steps in all (rerun with more to continue).",
)
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True, help="Crops per step.")
@click.option(
    "--size",
    type=click.IntRange(1),
    default=128,
    show_default=True,
    help="Crop side in pixels (a multiple of the layer's stride).",
)
@click.option(
    "--lr", type=click.FloatRange(0, min_open=True), default=5e-4, show_default=True, help="Adam learning rate."
)
@click.option(
    "--scale-min",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.1,
    show_default=True,
    help="Smallest random crop, as a fraction of the image area.",
)
@click.option(
    "--pixel-weight", type=click.FloatRange(0), default=1.0, show_default=True, help="Weight of the pixel loss."
)
@click.option(
    "--feature-weight", type=click.FloatRange(0), default=0.1, show_default=True, help="Weight of the feature loss."
)
@click.option(
    "--adv-weight",
    type=click.FloatRange(0),
    default=0.0,
    show_default=True,
    help="Weight of the adversarial loss (0 = no discriminator).",
)
@click.option(
    "--grid-weight",
    type=click.FloatRange(0),
    default=GENERATOR_GRID_WEIGHT,
    show_default=True,
    help="Weight of the seam term: flattens the output's edge energy per phase of the layer's stride (0 = off).",
)
@click.option(
    "--feature-layer",
    "feature_layers",
    multiple=True,
    help="Comparator layer for the feature loss (repeatable) [default: --layer].",
)
@click.option(
    "--width", type=click.IntRange(1), default=128, show_default=True, help="Generator base width (channels)."
)
@click.option(
    "--upsample",
    type=click.Choice(["bilinear", "nearest", "transposed"]),
    default=GENERATOR_UPSAMPLE,
    show_default=True,
    help="Upsampling of each stage: resize-convolutions (bilinear or nearest; no checkerboard) or DeePSiM's transposed convolutions.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the initial weights and the crops.")
@click.option(
    "--checkpoint-every",
    type=click.IntRange(0),
    default=200,
    show_default=True,
    help="Steps between checkpoints (0 = only at the end or on Ctrl-C).",
)
@click.option("--fresh", is_flag=True, help="Ignore an existing checkpoint and start afresh.")
@click.option("--half", is_flag=True, help="Store the generator's weights as float16 (half the file size).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@model_options
@friendly_errors
def train_generator(
    layer,
    images,
    out,
    steps,
    batch_size,
    size,
    lr,
    scale_min,
    pixel_weight,
    feature_weight,
    adv_weight,
    grid_weight,
    feature_layers,
    width,
    upsample,
    seed,
    checkpoint_every,
    fresh,
    half,
    quiet,
    model,
    weights,
    device,
):
    """Train a generator that inverts LAYER of a model from a folder of photos (DeePSiM losses).

    The result is a DGN prior: pass it to dream, invert or prefer with --prior dgn --generator OUT.
    A checkpoint is written every --checkpoint-every steps and on Ctrl-C; rerunning the same
    command resumes from it.

    \b
    Example:
      python scripts/export_bundled_photos.py photos && cnnvis train-generator --layer blocks.5.0.bn1 --images photos --out gen.pt
    """
    from cnnvis.cli.train import run_train_generator
    from cnnvis.models.registry import load_model
    from cnnvis.pipeline.loop import pick_device
    from cnnvis.priors.train import TrainConfig

    cfg = TrainConfig(
        steps=steps,
        batch_size=batch_size,
        size=size,
        lr=lr,
        scale_min=scale_min,
        pixel_weight=pixel_weight,
        feature_weight=feature_weight,
        adv_weight=adv_weight,
        grid_weight=grid_weight,
        feature_layers=tuple(feature_layers),
        width=width,
        upsample=upsample,
        seed=seed,
    )
    dev = pick_device(device)
    m = load_model(model, weights=weights, device=dev)
    sys.exit(run_train_generator(m, layer, images, out, cfg, dev, checkpoint_every, fresh, half, quiet))


@main.command()
@click.argument("model", required=False, default="efficientnet-lite0")
@click.option(
    "--size", type=click.IntRange(1), default=None, help="Input side in pixels [default: the model's input size]."
)
@click.option("--weights", default="random", show_default=True, help="Weights to load (shapes do not depend on them).")
@click.option("--all", "show_all", is_flag=True, help="Also list modules whose output is not a single tensor.")
@friendly_errors
def layers(model, size, weights, show_all):
    """List MODEL's dotted layer names with their output shapes at a given input size."""
    import torch

    from cnnvis.models.capture import list_layers
    from cnnvis.models.registry import load_model

    m = load_model(model, weights=None if weights == "pretrained" else weights)
    side = size or m.input_size
    if side < m.min_size:
        raise InputError(
            f"--size {side} is below the minimum input {m.min_size} of {model}; use --size {m.min_size} or more"
        )
    rows = list_layers(m.module, torch.zeros(1, 3, side, side))
    click.echo(f"# {model} at {side}x{side}: name, type, output shape (B, C, H, W)")
    width = max(len(n) for n, _, _ in rows)
    for name, kind, shape in rows:
        if shape is None and not show_all:
            continue
        click.echo(f"{name:<{width}}  {kind:<24} {'x'.join(map(str, shape)) if shape else '-'}")


@main.command("presets")
@friendly_errors
def presets_cmd():
    """List the bundled presets (use one with --preset NAME on its command)."""
    from cnnvis.cli.presets import bundled_names, read_preset

    rows = [read_preset(n) for n in bundled_names()]
    width = max((len(p.name) for p in rows), default=0)
    for p in rows:
        click.echo(f"{p.name:<{width}}  {p.command:<8} {p.description}")


@main.command("models")
def models_cmd():
    """List the model names cnnvis knows without a prefix."""
    from cnnvis.models.registry import known_models

    click.echo("efficientnet-lite0 (default, embedded weights), efficientnet-lite1, efficientnet-lite2")
    click.echo("torchvision: " + ", ".join(n for n in known_models() if not n.startswith("efficientnet")))
    click.echo("also: timm:NAME, package.module:factory, or a TorchScript file path")


if __name__ == "__main__":  # pragma: no cover
    main()
