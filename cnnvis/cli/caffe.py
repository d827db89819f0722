"""What ``cnnvis convert-caffe`` does: read a Caffe net with protobuf, write a PyTorch file.

A classifier (AlexNet, GoogLeNet, VGG19 ``deploy.prototxt`` + ``.caffemodel``) becomes a
converted-net file that ``--model FILE.pt`` loads with Caffe's layer names and preprocessing.
A DeePSiM generator (``--generator``) becomes a generator file for ``--prior dgn --generator``.
"""

from __future__ import annotations

import os

import click

from cnnvis.errors import InputError


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


def run_convert_caffe(
    prototxt: str,
    caffemodel: str,
    out: str,
    generator: str | None,
    mean: str | None,
    input_size: int | None,
    latent_bound: str | None,
    quiet: bool,
) -> int:
    from cnnvis.io.images import check_writable
    from cnnvis.models.caffe import convert_caffe, save_converted

    check_writable(out, (".pt", ".pth"))  # missing or unreadable Caffe files: the reader names them
    if generator is not None:
        from cnnvis.priors.generators.deepsim import deepsim_from_caffe
        from cnnvis.priors.generators.files import read_latent_bound, save_generator

        gen = deepsim_from_caffe(prototxt, caffemodel, None if generator == "auto" else generator)
        upper = read_latent_bound(latent_bound, gen) if latent_bound else None
        layer = encoder_layer_of(gen.arch)
        save_generator(
            out, gen, None, layer, upper, {"source": [os.path.abspath(prototxt), os.path.abspath(caffemodel)]}
        )
        if not quiet:
            click.echo(
                f"wrote {out}: {gen.arch} generator (latent {'x'.join(map(str, gen.latent_shape))}, inverts AlexNet {layer}, "
                f"output {gen.output_size[0]}x{gen.output_size[1]})"
            )
        return 0
    if latent_bound:
        raise InputError("--latent-bound applies to a generator; add --generator")
    net = convert_caffe(prototxt, caffemodel)
    meta = {"source": [os.path.abspath(prototxt), os.path.abspath(caffemodel)]}
    if mean is not None:
        meta["mean"] = _mean(mean)
    if input_size is not None:
        if input_size < 1:
            raise InputError(f"--input-size must be positive, got {input_size}")
        meta["input_size"] = input_size
    save_converted(net, out, **meta)
    if not quiet:
        n = sum(p.numel() for p in net.parameters())
        click.echo(f"wrote {out}: {len(net.caffe_names)} layers, {n / 1e6:.1f} M parameters; use it with --model {out}")
    return 0
