"""What ``cnnvis accentuate`` does once its flags are parsed: the recipe's typed options
(:mod:`cnnvis.recipes.accentuate`), the run, the image written."""

from __future__ import annotations

from cnnvis.cli.dream import check_alpha_output
from cnnvis.cli.runner import run_render
from cnnvis.io.outputs import OutputOptions
from cnnvis.models.options import ModelOptions
from cnnvis.recipes.accentuate import AccentuateOptions, accentuate_render
from cnnvis.recipes.options import given


def run_accentuate(**kw) -> int:
    """Run the accentuate command; return the process exit code."""
    from cnnvis.io.images import check_writable, read_image

    opts, model_opts, outputs = (g.take(kw) for g in (AccentuateOptions, ModelOptions, OutputOptions))
    opts.check()
    check_writable(opts.out)
    check_alpha_output(opts.out, kw)
    if (table := model_opts.layer_table()) is not None:
        table.check_layers([opts.layer] + ([opts.anchor_layer] if opts.anchor_layer else []))
        table.check_channel(opts.layer, opts.units()[0])
    photo = read_image(opts.image)  # a bad photo fails before the model loads
    from cnnvis.models.registry import load_model  # torch: after the checks that need none
    from cnnvis.pipeline.device import pick_device

    device = pick_device(model_opts.device)
    model = load_model(model_opts.model, model_opts.weights, device)
    render = accentuate_render(opts, model, device, given(kw), photo)
    code, _ = run_render(render, opts.out, outputs)
    return code
