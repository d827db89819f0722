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
from cnnvis.cli.atlas import atlas_options
from cnnvis.cli.interrupts import DeferredInterrupt
from cnnvis.cli.options import (
    declared_options,
    model_options,
    output_options,
    prior_options,
    render_options,
    video_options,
)
from cnnvis.cli.presets import preset_option
from cnnvis.defaults import (
    DEFAULT_MODEL,
)
from cnnvis.errors import EXIT_BAD_INPUT, InputError
from cnnvis.models.options import LayersOptions
from cnnvis.priors.train_config import TrainCommandOptions, TrainConfig
from cnnvis.recipes.accentuate import AccentuateOptions
from cnnvis.recipes.caffe import ConvertCaffeOptions
from cnnvis.recipes.dream import DreamOptions
from cnnvis.recipes.invert import InvertOptions
from cnnvis.recipes.prefer import PreferOptions
from cnnvis.recipes.quality import ScoreOptions
from cnnvis.recipes.video import DREAM_COHERENCE, INVERT_COHERENCE

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
            if isinstance(e, click.NoSuchOption) and e.possibilities:
                e.possibilities = _closest(e.option_name, e.possibilities)
            where = f" (see: {e.ctx.command_path} --help)" if e.ctx is not None else ""
            _fail(e.format_message().replace("\n", " ") + where)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.exceptions.Abort:  # Ctrl-C outside a command (while click parses): nothing started
            click.echo("interrupted; nothing written", err=True)
            sys.exit(interrupts.exit_code())


def _closest(name: str, candidates) -> list[str]:
    """The suggestions worth showing for a mistyped flag: those nearly as close as the closest
    (``--step``: ``--steps``, not ``--tile``)."""
    import difflib

    scored = [(difflib.SequenceMatcher(None, name, c).ratio(), c) for c in candidates]
    best = max(score for score, _ in scored)
    return [c for score, c in sorted(scored, reverse=True) if score >= max(0.7, best - 0.15)]


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="cnnvis")
def main():
    """Deep dream, preferred images and feature inversion with CNNs, at any resolution."""


@main.command()
@preset_option
@declared_options(DreamOptions)
@video_options(DREAM_COHERENCE)
@model_options
@render_options(command="dream")
@prior_options
@output_options
@friendly_errors
def dream(**kw):
    """Dream on IMAGE (default: a bundled photo) and write --out.

    \b
    Examples:
      cnnvis dream --out dream.png
      cnnvis dream photo.jpg --layer blocks.5.0 --octaves 5 --steps 20 --out big.png
      cnnvis dream --noise --channel 7 --layer blocks.5.0 --out channel7.png
      cnnvis dream photo.jpg --final-size 4096x4096 --out huge.png
      cnnvis dream clip.mp4 --octaves 2 --steps 10 --out dreamed.mp4
    """
    from cnnvis.cli.dream import run_dream

    sys.exit(run_dream(**kw))


@main.command()
@preset_option
@declared_options(InvertOptions)
@video_options(INVERT_COHERENCE)
@model_options
@render_options(command="invert")
@prior_options
@output_options
@friendly_errors
def invert(**kw):
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
    from cnnvis.cli.invert import run_invert

    sys.exit(run_invert(**kw))


@main.command()
@preset_option
@declared_options(PreferOptions)
@model_options
@render_options(command="prefer")
@prior_options
@output_options
@friendly_errors
def prefer(**kw):
    """Generate the preferred image of a unit (cnnpref) or of a whole channel.

    Render flags left out take the tuned defaults (a decorrelated Fourier image with
    transformation robustness; see cnnvis.recipes.recon).

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
    from cnnvis.cli.prefer import run_prefer

    sys.exit(run_prefer(**kw))


@main.command()
@preset_option
@declared_options(AccentuateOptions)
@model_options
@render_options(command="prefer")
@output_options
@friendly_errors
def accentuate(**kw):
    """Accentuate a unit in a photo (feature accentuation, Hamblin et al. 2024): what the unit
    responds to in that photo.

    The render starts from the photo and maximizes the unit while an anchor term keeps the image
    near the photo's own activations at --anchor-layer, balanced against the unit's gradient.
    Render flags left out take prefer's tuned defaults.

    \b
    Examples:
      cnnvis accentuate photo.jpg --layer blocks.5 --channel 7 --out accent.png
      cnnvis accentuate photo.jpg --layer blocks.5 --channel 7 --anchor-layer blocks.3 --alpha-from-grad --out a.png
    """
    from cnnvis.cli.accentuate import run_accentuate

    sys.exit(run_accentuate(**kw))


@main.command()
@declared_options(ScoreOptions)
@friendly_errors
def score(**kw):
    """Score images: how natural their spectra are (the slope of the amplitude spectrum, about -1
    for photos, and the energy above half the Nyquist frequency) and, with --class K, how often
    networks that did not make them classify them as class K (MACO's transferability).

    \b
    Examples:
      cnnvis score a.png b.png
      cnnvis score cat_*.png --class 285 --json scores.json
    """
    from cnnvis.cli.score import run_score

    sys.exit(run_score(**kw))


@main.command()
@preset_option
@atlas_options
@model_options
@render_options(command="prefer")
@prior_options
@click.pass_context
@friendly_errors
def atlas(ctx, model, weights, device, **kw):
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
    from cnnvis.priors.spec import PriorSpec
    from cnnvis.recipes.atlas_plan import AtlasOptions

    opts = AtlasOptions.take(kw)
    prior = PriorSpec.take(kw)  # what is left of kw: the render flags
    sys.exit(
        run_atlas(ctx, opts, model=opts.model_arg or model, weights=weights, device=device, prior=prior, render_kw=kw)
    )


@main.command()
@click.argument("image")
@click.option("--out", "-o", default=None, help="Where to write the re-run [default: NAME.replay.EXT].")
@click.option("--check", is_flag=True, help="Exit 1 unless the re-run equals IMAGE pixel for pixel.")
@click.option("--trust-model", is_flag=True, help=TRUST_HELP)
@click.pass_context
@friendly_errors
def replay(ctx, image, out, check, trust_model):
    """Run again the command recorded in IMAGE's manifest (its PNG text chunk or NAME.EXT.manifest.json).

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
@declared_options(ConvertCaffeOptions)
@friendly_errors
def convert_caffe(**kw):
    """Convert a Caffe net (deploy PROTOTXT + CAFFEMODEL) to PyTorch, with no Caffe install.

    \b
    Examples:
      cnnvis convert-caffe bvlc_alexnet/deploy.prototxt bvlc_alexnet.caffemodel --out alexnet.pt
      cnnvis prefer --model alexnet.pt --layer fc8 --channel 285 --out cat.png
      cnnvis convert-caffe fc6/generator.prototxt fc6/generator.caffemodel --generator --out fc6.pt
      cnnvis prefer --model alexnet.pt --layer fc8 --channel 285 --prior dgn --generator fc6.pt --out cat_dgn.png
    """
    from cnnvis.recipes.caffe import convert_caffe_files

    opts = ConvertCaffeOptions.take(kw)
    line = convert_caffe_files(opts)
    if not opts.quiet:
        click.echo(line)


@main.command("train-generator")
@preset_option
@declared_options(TrainCommandOptions)
@declared_options(TrainConfig)
@model_options
@friendly_errors
def train_generator(model, weights, device, **kw):
    """Train a generator that inverts LAYER of a model from a folder of photos (DeePSiM losses).

    The result is a DGN prior: pass it to dream, invert or prefer with --prior dgn --generator OUT.
    A checkpoint is written every --checkpoint-every steps and on Ctrl-C; rerunning the same
    command resumes from it.

    \b
    Example:
      python scripts/export_bundled_photos.py photos
      cnnvis train-generator --layer blocks.5.0.bn1 --images photos --out gen.pt
    """
    from cnnvis.cli.train import run_train_generator

    cfg = TrainConfig.take(kw)
    opts = TrainCommandOptions.take(kw)
    sys.exit(run_train_generator(opts, cfg, model, weights, device))


@main.command()
@declared_options(LayersOptions)
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
    if m.fixed_size and side != m.input_size:
        raise InputError(f"--size {side}: {model} takes only {m.input_size}x{m.input_size} input; drop --size")
    rows = list_layers(m.module, torch.zeros(1, 3, side, side))
    click.echo(
        f"# {model} at {side}x{side}: name, type, output shape, layout, the (C, H, W) map (or (C,) vector) "
        "that channels and neurons address"
    )
    width = max(len(row.name) for row in rows)
    for row in rows:
        if row.shape is None and not show_all:
            continue
        shape = "x".join(map(str, row.shape)) if row.shape else "-"
        layout = row.layout.describe() if row.layout else "-"
        mapped = "x".join(map(str, row.map_shape)) if row.map_shape else "-"
        click.echo(f"{row.name:<{width}}  {row.type:<24} {shape:<16} {layout:<11} {mapped}")


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

    def label(name: str) -> str:
        return f"{name} (default)" if name == DEFAULT_MODEL else name

    names = known_models()
    lite = [n for n in names if n.startswith("efficientnet-lite")]
    click.echo("embedded weights: " + ", ".join(map(label, lite)))
    click.echo("torchvision: " + ", ".join(label(n) for n in names if n not in lite))
    click.echo("also: timm:NAME, package.module:factory, or a TorchScript file path")


if __name__ == "__main__":  # pragma: no cover
    main()
