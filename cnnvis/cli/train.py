"""What ``cnnvis train-generator`` does once its flags are parsed: load, train with a progress
bar, write checkpoints periodically and on Ctrl-C, write the generator file."""

from __future__ import annotations

import os
import platform
import time

import click
import torch

from cnnvis.cli import interrupts
from cnnvis.cli.interrupts import begin_work
from cnnvis.io.checkpoint import load_sealed, save_sealed
from cnnvis.io.images import check_writable
from cnnvis.priors.generators.files import save_generator
from cnnvis.priors.train import GeneratorTrainer, load_image_folder
from cnnvis.priors.train_config import TrainCommandOptions, TrainConfig


def checkpoint_path(out: str) -> str:
    """Where the checkpoint of a run writing ``out`` lives: ``OUT.ckpt`` beside it."""
    return out + ".ckpt"


def _info(trainer: GeneratorTrainer, images: str, n_images: int, seconds: float, init: str | None = None) -> dict:
    from dataclasses import asdict

    return {
        "images": os.path.abspath(images),
        "init": os.path.abspath(init) if init else None,  # the file it was fine-tuned from
        "num_images": n_images,
        "steps": trainer.step,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(trainer.cfg).items()},
        "seconds": round(seconds, 1),
        "machine": f"{platform.machine()} {torch.get_num_threads()} threads, {trainer.device.type}",
        "torch": str(torch.__version__),
    }


def run_train_generator(
    opts: TrainCommandOptions, cfg: TrainConfig, model: str, weights: str | None, device: str
) -> int:
    """Train ``model``'s ``opts.layer`` on ``opts.images``, resuming from ``OUT.ckpt`` when it exists
    (unless ``opts.fresh``); write the generator file; return the exit code."""
    from cnnvis.cli.progress import bar as progress_bar
    from cnnvis.models.registry import load_model
    from cnnvis.pipeline.device import pick_device

    opts.check()
    check_writable(opts.out, (".pt", ".pth"))
    dev = pick_device(device)
    loaded = load_model(model, weights=weights, device=dev)
    pics = load_image_folder(opts.images)
    trainer = GeneratorTrainer(loaded, opts.layer, pics, cfg, dev)
    ck_path = checkpoint_path(opts.out)
    if os.path.exists(ck_path) and not opts.fresh:
        trainer.load_checkpoint(
            load_sealed(ck_path, "checkpoint", "delete it or pass --fresh", map_location=trainer.device), ck_path
        )
        click.echo(f"resuming from {ck_path} at step {trainer.step}")  # even with -q: it changes what the run does
    elif opts.init:
        from cnnvis.priors.generators.files import load_generator

        trainer.start_from(load_generator(opts.init, trainer.device), opts.init)
    bar = progress_bar(cfg.steps, initial=trainer.step, quiet=opts.quiet)
    started = time.perf_counter()

    def on_step(p):
        bar.set_postfix({k: f"{v:.3g}" for k, v in p.losses.items()})
        bar.update(1)
        if opts.checkpoint_every and p.step % opts.checkpoint_every == 0:
            save_sealed(ck_path, trainer.checkpoint())

    begin_work()  # a Ctrl-C while loading: stop before the first step
    try:
        gen = trainer.run(on_step, stop=interrupts.asked)  # Ctrl-C or SIGTERM: stop after the step
    finally:
        bar.close()
    save_sealed(ck_path, trainer.checkpoint())
    info = _info(trainer, opts.images, len(pics), time.perf_counter() - started, opts.init)
    save_generator(opts.out, gen, loaded.name, opts.layer, trainer.latent_upper(), info, half=opts.half)
    if interrupts.asked():
        click.echo(
            f"interrupted at step {trainer.step}: checkpoint {ck_path} and the generator so far {opts.out} written; "
            "rerun the same command to resume"
        )
        return interrupts.exit_code()
    if not opts.quiet:
        click.echo(f"wrote {opts.out} ({trainer.step} steps); checkpoint {ck_path}")
    return 0
