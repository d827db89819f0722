"""The one runner of the rendering commands: run a :class:`cnnvis.pipeline.loop.Render` with the
progress bar, periodic saves, checkpoints and a progress video, then write the result.

Ctrl-C (or SIGTERM) finishes the current step, then writes ``NAME.interrupted.EXT`` and the
checkpoint ``NAME.ckpt`` (``cnnvis resume NAME.ckpt`` finishes the run bit for bit) and returns
exit code 130 (143); a second Ctrl-C stops at once (:mod:`cnnvis.cli.interrupts`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click
import numpy as np

from cnnvis.cli import interrupts
from cnnvis.cli.checkpoints import RESUME_STATE
from cnnvis.cli.interrupts import begin_work
from cnnvis.cli.progress import ProgressBar
from cnnvis.cli.recording import current_manifest
from cnnvis.io.checkpoint import CHECKPOINT_FORMAT, checkpoint_path, remove_checkpoint
from cnnvis.io.images import labelled_path, picture
from cnnvis.io.outputs import OutputOptions
from cnnvis.io.video_out import video_frame
from cnnvis.recipes.replay import ROLE_PROGRESS_VIDEO, with_role

if TYPE_CHECKING:
    import torch

VIDEO_SIDE = 640  # longest side of progress-video frames, pixels


def render_manifest(render, status: str = "complete", label: str | None = None) -> dict | None:
    """The manifest of the command running ``render`` (None outside a click command); ``label``:
    which file of a batch render it describes (replay finds its twin by it)."""
    manifest = current_manifest(
        model=render.model, cfg=render.cfg, device=render.device, status=status, compute=render.execution.record()
    )
    return manifest if manifest is None or label is None else dict(manifest, output_label=label)


def save_checkpoint(render, path: str, status: str) -> None:
    """Write the sealed checkpoint of ``render`` (resumable bit for bit) to ``path``."""
    from cnnvis.io.checkpoint import save_sealed

    save_sealed(
        path, {"format": CHECKPOINT_FORMAT, "manifest": render_manifest(render, status), "state": render.checkpoint()}
    )


@dataclass
class RenderRun:
    """One render's outputs: ``out``, its batch files and sheet (``labels``), periodic saves, a
    progress video and checkpoints, as ``outputs`` says; ``write=False``: the caller writes."""

    render: object
    out: str
    outputs: OutputOptions = field(default_factory=OutputOptions)
    labels: list[str] | None = None
    bar_desc: str = ""
    write: bool = True
    frames: list = field(default_factory=list)
    clean_stop: bool = False

    @property
    def mode(self) -> str:
        return self.render.cfg.output

    def _video_size(self) -> tuple[int, int]:
        final_size = self.render.plan[-1]
        if self.labels:  # the frames show the contact sheet
            import torch  # here, not at import: a bad flag is answered before torch loads

            final_size = picture(torch.zeros(len(self.labels), 3, *final_size), self.mode, self.labels).shape[:2]
        scale = min(1.0, VIDEO_SIDE / max(final_size))
        return (max(2, round(final_size[0] * scale)), max(2, round(final_size[1] * scale)))

    def _after_step(self, p) -> None:
        """Periodic saves, video frames and checkpoints after step ``p``; stop here on Ctrl-C."""
        o = self.outputs
        if o.save_every and p.step % o.save_every == 0:
            # its own manifest, labelled: replay --check re-runs the command and compares the twin
            label = f"{p.size_index + 1}_{p.size_step}"
            manifest = render_manifest(self.render, f"step {p.step} of {p.total}", label=label)
            self._save(labelled_path(self.out, label), picture(p.image(), self.mode, self.labels), manifest)
        if o.video and (p.step % o.video_every == 0 or p.step == p.total):
            self.frames.append(video_frame(picture(p.image(), self.mode, self.labels), self.video_size))
        if o.checkpoint_every and p.step % o.checkpoint_every == 0 and p.step < p.total:
            save_checkpoint(self.render, checkpoint_path(self.out), f"checkpoint after step {p.step} of {p.total}")
        if interrupts.asked():
            self.clean_stop = True  # between steps: the state is whole
            raise KeyboardInterrupt

    def _save(self, path: str, img: np.ndarray, manifest: dict | None) -> None:
        from cnnvis.io.images import save_image

        save_image(path, img, manifest, quality=self.outputs.jpeg_quality)

    def run(self):
        """Run the render; return ``(exit code, final canvas (N, C, H, W) or None)``."""
        resume = RESUME_STATE.get()
        self.video_size = self._video_size()
        progress = ProgressBar(self.bar_desc, then=self._after_step, quiet=self.outputs.quiet, leave=self.write)
        begin_work()  # a Ctrl-C while loading: stop before the first step
        try:
            final = self.render.run(progress, resume=resume)
        except KeyboardInterrupt:
            done = progress.steps_done
            progress.close()
            return self._interrupted(done), None
        progress.close()
        self._report_compute()
        if self.write:
            self._write(final)
        if self.outputs.checkpoint_every or resume is not None:
            remove_checkpoint(checkpoint_path(self.out))  # the run is finished: its checkpoint is spent
        self._write_video()
        return 0, final

    def _report_compute(self) -> None:
        """A compile that fell back says so (even with --quiet); one that ran says what it cost."""
        run = self.render.execution
        for note in run.notes:
            click.echo(f"note: {note}", err=True)
        if run.compile and run.compile_seconds:
            self._say(f"compiled the network in {run.compile_seconds:.0f} s (the first call of each tile shape)")

    def _interrupted(self, done: int) -> int:
        """Write what exists after a Ctrl-C: the current image, the checkpoint (when the stop was
        between steps) and the frames of the progress video; return the exit code."""
        if self.render.canvas is not None:
            status = f"interrupted after step {done} of {self.render.total_steps}"
            stem, ext = os.path.splitext(self.out)
            path = f"{stem}.interrupted{ext}"
            self._save(path, picture(self.render.image(), self.mode, self.labels), render_manifest(self.render, status))
            click.echo(f"interrupted: current image written to {path}")
            if self.clean_stop:
                ck_path = checkpoint_path(self.out)
                save_checkpoint(self.render, ck_path, status)
                click.echo(f"checkpoint written to {ck_path}; finish the run with: cnnvis resume {ck_path}")
        self._write_video()
        return interrupts.exit_code()

    def _write_video(self) -> None:
        from cnnvis.io.images import save_video

        if self.outputs.video and self.frames:
            manifest = with_role(render_manifest(self.render), ROLE_PROGRESS_VIDEO)
            save_video(self.outputs.video, self.frames, manifest=manifest)

    def _write(self, final: torch.Tensor) -> None:
        """Write the result: ``out``, or for a labelled batch each image and the contact sheet."""
        from cnnvis.io.images import to_uint8

        size = f"({final.shape[-1]}x{final.shape[-2]})"
        if not self.labels:
            self._save(self.out, to_uint8(final, self.mode), render_manifest(self.render))
            self._say(f"wrote {self.out} {size}")
            return
        for i, label in enumerate(self.labels):
            self._save(
                labelled_path(self.out, label), to_uint8(final, self.mode, i), render_manifest(self.render, label=label)
            )
        sheet = labelled_path(self.out, "sheet")
        self._save(sheet, picture(final, self.mode, self.labels), render_manifest(self.render, label="sheet"))
        first, last = labelled_path(self.out, self.labels[0]), labelled_path(self.out, self.labels[-1])
        self._say(f"wrote {len(self.labels)} images {first} ... {last} {size} and {sheet}")

    def _say(self, line: str) -> None:
        if not self.outputs.quiet:
            click.echo(line)


def run_render(render, out: str, outputs: OutputOptions, *, labels=None, bar_desc: str = "", write: bool = True):
    """Run ``render`` and write ``out`` (see :class:`RenderRun`); return ``(exit code, final canvas
    (N, C, H, W) or None)``."""
    return RenderRun(render, out, outputs, labels, bar_desc, write).run()
