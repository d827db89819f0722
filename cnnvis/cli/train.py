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
from cnnvis.errors import InputError
from cnnvis.io.checkpoint import load_sealed, save_sealed
from cnnvis.io.images import check_writable
from cnnvis.priors.generators.files import save_generator
from cnnvis.priors.train import GeneratorTrainer, TrainConfig, load_image_folder


def checkpoint_path(out: str) -> str:
    """Where the checkpoint of a run writing ``out`` lives: ``OUT.ckpt`` beside it."""
    return out + ".ckpt"


def _info(trainer: GeneratorTrainer, images: str, n_images: int, seconds: float) -> dict:
    from dataclasses import asdict

    return {
        "images": os.path.abspath(images),
        "num_images": n_images,
        "steps": trainer.step,
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(trainer.cfg).items()},
        "seconds": round(seconds, 1),
        "machine": f"{platform.machine()} {torch.get_num_threads()} threads, {trainer.device.type}",
        "torch": str(torch.__version__),
    }


def run_train_generator(
    model,
    layer: str,
    images: str,
    out: str,
    cfg: TrainConfig,
    device,
    checkpoint_every: int = 200,
    fresh: bool = False,
    half: bool = False,
    quiet: bool = False,
) -> int:
    """Train, resuming from ``OUT.ckpt`` when it exists (unless ``fresh``); return the exit code."""
    from tqdm import tqdm

    check_writable(out, (".pt", ".pth"))
    if checkpoint_every < 0:
        raise InputError(f"--checkpoint-every must be >= 0, got {checkpoint_every}")
    pics = load_image_folder(images)
    trainer = GeneratorTrainer(model, layer, pics, cfg, device)
    ck_path = checkpoint_path(out)
    if os.path.exists(ck_path) and not fresh:
        trainer.load_checkpoint(
            load_sealed(ck_path, "checkpoint", "delete it or pass --fresh", map_location=trainer.device), ck_path
        )
        click.echo(f"resuming from {ck_path} at step {trainer.step}")  # even with -q: it changes what the run does
    bar = tqdm(total=cfg.steps, initial=trainer.step, disable=quiet, unit="step", dynamic_ncols=True)
    started = time.perf_counter()

    def on_step(p):
        bar.set_postfix({k: f"{v:.3g}" for k, v in p.losses.items()})
        bar.update(1)
        if checkpoint_every and p.step % checkpoint_every == 0:
            save_sealed(ck_path, trainer.checkpoint())

    begin_work()  # a Ctrl-C while loading: stop before the first step
    try:
        gen = trainer.run(on_step, stop=interrupts.asked)  # Ctrl-C or SIGTERM: stop after the step
    finally:
        bar.close()
    save_sealed(ck_path, trainer.checkpoint())
    save_generator(
        out,
        gen,
        model.name,
        layer,
        trainer.latent_upper(),
        _info(trainer, images, len(pics), time.perf_counter() - started),
        half=half,
    )
    if interrupts.asked():
        click.echo(
            f"interrupted at step {trainer.step}: checkpoint {ck_path} and the generator so far {out} written; rerun the same command to resume"
        )
        return interrupts.exit_code()
    if not quiet:
        click.echo(f"wrote {out} ({trainer.step} steps); checkpoint {ck_path}")
    return 0
