"""Converting a Caffe net (deploy ``.prototxt`` + ``.caffemodel``) to a PyTorch file, with protobuf and
no Caffe install: what ``cnnvis convert-caffe`` runs.

A classifier (AlexNet, GoogLeNet, VGG19) becomes a converted-net file that ``--model FILE.pt`` loads
with Caffe's layer names and preprocessing. A DeePSiM generator (``generator``) becomes a generator
file for ``--prior dgn --generator``. The options are declared once, in :class:`ConvertCaffeOptions`;
torch loads on first use, not at import (``--help`` reads this).
"""

from __future__ import annotations

import os

from cnnvis.config import Options, group, setting
from cnnvis.errors import InputError

GENERATOR_AUTO = "auto"  # --generator alone: find the DeePSiM generator the prototxt matches


@group("convert_caffe")
class ConvertCaffeOptions(Options):
    """What ``cnnvis convert-caffe`` converts (a classifier, or a DeePSiM generator with
    ``generator``) and where it writes it."""

    prototxt: str = setting(None, "The Caffe deploy .prototxt.", argument=True, default_text="deploy.prototxt")
    caffemodel: str = setting(None, "Its .caffemodel weights.", argument=True, default_text="net.caffemodel")
    out: str | None = setting(None, "PyTorch file to write (.pt). Required.", short="-o")
    generator: str | None = setting(
        None,
        "Convert a DeePSiM generator (release_deepsim_v0) instead of a classifier: auto, or deepsim-fc6, -fc7, "
        "-fc8, -pool5, -conv3, -conv4, -norm1, -norm2.",
        flag_value=GENERATOR_AUTO,
    )
    mean: str | None = setting(None, "Classifier: the BGR mean on 0..255 as B,G,R.", default_text="104,117,123")
    input_size: int | None = setting(None, "Classifier: input side in pixels.", low=1, default_text="the prototxt's")
    latent_bound: str | None = setting(None, "Generator: store these per-channel latent upper bounds (.txt or .npy).")
    quiet: bool = setting(False, "No summary line.", short="-q")

    def check(self) -> None:
        """The checks across options, before anything is read (one line each)."""
        if not self.out:
            raise InputError("convert-caffe needs --out FILE.pt; e.g. --out alexnet.pt")
        if self.latent_bound and self.generator is None:
            raise InputError("--latent-bound applies to a generator; add --generator")


def _mean(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) != 3:
        raise InputError(f"bad --mean '{text}'; give the BGR mean on the 0..255 scale as B,G,R (e.g. 104,117,123)")
    return vals


def encoder_layer_of(arch: str) -> str:
    """The AlexNet layer a DeePSiM generator inverts: ``deepsim-fc6`` -> ``fc6``."""
    return arch.split("-", 1)[1]


def convert_caffe_files(opts: ConvertCaffeOptions) -> str:
    """Convert ``opts.prototxt`` + ``opts.caffemodel`` and write ``opts.out``; return a line that
    says what was written."""
    from cnnvis.io.images import check_writable

    opts.check()
    check_writable(opts.out, (".pt", ".pth"))  # missing or unreadable Caffe files: the reader names them
    source = {"source": [os.path.abspath(opts.prototxt), os.path.abspath(opts.caffemodel)]}
    if opts.generator is not None:
        return _convert_generator(opts, source)
    return _convert_classifier(opts, source)


def _convert_generator(opts: ConvertCaffeOptions, source: dict) -> str:
    from cnnvis.priors.generators.deepsim import deepsim_from_caffe
    from cnnvis.priors.generators.files import read_latent_bound, save_generator

    arch = None if opts.generator == GENERATOR_AUTO else opts.generator
    gen = deepsim_from_caffe(opts.prototxt, opts.caffemodel, arch)
    upper = read_latent_bound(opts.latent_bound, gen) if opts.latent_bound else None
    layer = encoder_layer_of(gen.arch)
    save_generator(opts.out, gen, None, layer, upper, source)
    return (
        f"wrote {opts.out}: {gen.arch} generator (latent {'x'.join(map(str, gen.latent_shape))}, "
        f"inverts AlexNet {layer}, output {gen.output_size[0]}x{gen.output_size[1]})"
    )


def _convert_classifier(opts: ConvertCaffeOptions, source: dict) -> str:
    from cnnvis.models.caffe import convert_caffe, save_converted

    net = convert_caffe(opts.prototxt, opts.caffemodel)
    meta = dict(source)
    if opts.mean is not None:
        meta["mean"] = _mean(opts.mean)
    if opts.input_size is not None:
        meta["input_size"] = opts.input_size
    save_converted(net, opts.out, **meta)
    n = sum(p.numel() for p in net.parameters())
    return (
        f"wrote {opts.out}: {len(net.caffe_names)} layers, {n / 1e6:.1f} M parameters; use it with --model {opts.out}"
    )
