"""The command-line face of a video run (:mod:`cnnvis.recipes.frames`): one bar over frames, with
an ETA, Ctrl-C as a clean stop, and the lines that say where the frames and the checkpoint went.

Ctrl-C finishes the current step, then writes the frames done and the checkpoint ``NAME.ckpt``, and
exits 130; a second Ctrl-C stops at once. ``cnnvis resume NAME.ckpt`` goes on from the interrupted
frame (from the step it reached after a clean stop).
"""

from __future__ import annotations

import click

from cnnvis.cli import interrupts
from cnnvis.cli.checkpoints import RESUME_STATE
from cnnvis.cli.progress import bar
from cnnvis.cli.recording import current_manifest
from cnnvis.errors import InputError
from cnnvis.recipes.frames import FrameJob, VideoEvents, VideoRun

__all__ = ["FrameJob", "VideoRun", "job_manifest", "run_video"]


def job_manifest(model, device):
    """A :attr:`FrameJob.manifest` for the command now running."""
    return lambda cfg, status: current_manifest(model=model, cfg=cfg, device=device, status=status)


def _events(progress: dict, quiet: bool) -> VideoEvents:
    def started(total: int, done: int) -> None:
        progress["bar"] = bar(total, initial=done, unit="frame", quiet=quiet)

    def step(p) -> None:
        progress["bar"].set_postfix_str(f"step {p.step}/{p.total} score {p.score:.3g}", refresh=False)
        progress["bar"].refresh()

    def frame(figure: str | None) -> None:
        progress["bar"].update(1)
        if figure:
            progress["bar"].set_postfix_str(figure)

    return VideoEvents(started, step, frame, lambda line: click.echo(line, err=True), interrupts.asked)


def run_video(run: VideoRun, job: FrameJob, quiet: bool = False) -> int:
    """Render every frame of ``run`` through ``job``, drawing the bar and saying what was written.
    Returns the exit code (0, or 130 after Ctrl-C)."""
    interrupts.begin_work()  # a Ctrl-C while loading: stop before anything is written
    progress: dict = {}
    try:
        try:
            outcome = run.run(job, _events(progress, quiet), resume=RESUME_STATE.get())
        finally:
            if "bar" in progress:
                progress["bar"].close()  # before any line is printed below
    except InputError:
        raise  # its message says what was kept
    except BaseException:
        kept = run.outcome
        if kept.where or kept.checkpoint:
            resume = f"; go on with: cnnvis resume {kept.checkpoint}" if kept.checkpoint else ""
            click.echo(f"error: {kept.frames} frames kept in {kept.where}{resume}", err=True)
        raise
    if outcome.stopped:
        if outcome.where:
            click.echo(f"interrupted: {outcome.frames} frames written to {outcome.where}")
        if outcome.checkpoint:
            click.echo(
                f"checkpoint written to {outcome.checkpoint}; finish the run with: cnnvis resume {outcome.checkpoint}"
            )
        return interrupts.exit_code()
    if outcome.summary:
        click.echo(outcome.summary)
    if not quiet:
        click.echo(f"wrote {run.out} ({outcome.frames} frames)")
    return 0
