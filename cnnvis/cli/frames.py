"""Frame-by-frame rendering of videos for ``dream`` and ``invert``: read, start, render, write, checkpoint.

Frames stream in (:class:`cnnvis.io.video.VideoReader`) and out (:class:`cnnvis.io.segments.VideoOutput`)
one at a time, so memory does not grow with the clip. Each frame is an ordinary render whose start
the command builds from the previous frame's result (:mod:`cnnvis.video.coherence`). One bar
counts frames, with an ETA.

Ctrl-C finishes the current step, then writes the frames done (``NAME.interrupted.EXT``, or the
PNG folder itself) and the checkpoint ``NAME.ckpt``, and exits 130; a second Ctrl-C stops at
once. ``cnnvis resume NAME.ckpt`` goes on from the interrupted frame (from the step it reached
after a clean stop); on CPU its frames equal an uninterrupted run's bit for bit, because the
checkpoint keeps the previous result in float32 and each frame's start is a deterministic
function of it and of the decoded input frames. ``--checkpoint-every N`` writes the checkpoint
every N frames, so a crash (even ``kill -9``) loses at most N frames. An error while running
(a corrupt input frame included) keeps the frames done and a checkpoint too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import click
import numpy as np
import torch

from cnnvis.cli import interrupts
from cnnvis.cli.checkpoints import CHECKPOINT_FORMAT, RESUME_STATE
from cnnvis.cli.interrupts import begin_work
from cnnvis.cli.recording import current_manifest
from cnnvis.errors import InputError
from cnnvis.io.images import to_float_rgb
from cnnvis.io.manifest import write_sidecar
from cnnvis.io.segments import VideoOutput, base_path, check_output, output_kind
from cnnvis.io.video import CorruptVideoError, VideoReader, probe

VIDEO_STATE = "video"  # the key that marks a checkpoint's state as a video run's


@dataclass
class FrameJob:
    """What a command renders for each frame.

    ``make_render(index, frame, prev_frame, prev_out)`` builds the Render of frame ``index``
    (frames (H, W, 3) float32 in [0, 1]; ``prev_out`` the previous result, None for the first
    frame) and must depend on nothing else, so that a resumed run rebuilds it exactly.
    ``describe(index, frame, out)`` returns a short figure for the bar after each frame, and
    ``summary()`` a line printed at the end (both optional). ``model``, ``cfg`` and ``device``
    go into the manifests.
    """

    make_render: Callable
    model: object = None
    cfg: object = None
    device: object = None
    describe: Callable | None = None
    summary: Callable[[], str | None] | None = None


def checkpoint_path(out: str) -> str:
    """``dir/name.mp4`` -> ``dir/name.ckpt``; ``frames/`` -> ``frames.ckpt``."""
    return os.path.splitext(base_path(out))[0] + ".ckpt"


def audio_note(info, out: str) -> str | None:
    """The line to print when the input has audio that ``out`` cannot hold (a GIF, PNG frames)."""
    kind = output_kind(out)
    if info.audio is None or kind == "mp4":
        return None
    what = "a GIF" if kind == "gif" else "a folder of PNG frames"
    return f"note: {what} cannot hold the audio of '{info.path}' ({info.audio}); '{out}' is written without it (write a .mp4 to keep it)"


class VideoRun:
    """One video through a :class:`FrameJob`. Built before the model loads: it checks the input
    (readable, at least one frame) and the output, so bad input fails at once."""

    def __init__(self, src: str, out: str, checkpoint_every: int = 0):
        if checkpoint_every < 0:
            raise InputError(
                f"--checkpoint-every must be >= 0 (frames between checkpoints; 0 = only on Ctrl-C), got {checkpoint_every}"
            )
        check_output(out)
        self.info = probe(src)
        with VideoReader(src, self.info) as reader:
            try:
                first = next(reader, None)
            except CorruptVideoError as e:
                raise InputError(f"{e}; give a video that ffmpeg can play") from None
        if first is None:
            raise InputError(f"video '{src}' has no frames; give a video with at least one frame")
        self.src, self.out, self.checkpoint_every = src, out, checkpoint_every
        self.ck_path = checkpoint_path(out)

    def _save_checkpoint(
        self,
        job: FrameJob,
        render,
        nxt: int,
        prev_out: np.ndarray | None,
        output: VideoOutput,
        status: str,
        frame_state=None,
    ) -> None:
        from cnnvis.io.checkpoint import save_sealed

        state = {
            VIDEO_STATE: 1,
            "next": nxt,
            "output": output.state(),
            "render": frame_state,
            "prev_out": None
            if prev_out is None
            else torch.from_numpy(np.ascontiguousarray(prev_out, np.float32).copy()),
        }
        cfg = render.cfg if render is not None else job.cfg
        manifest = current_manifest(model=job.model, cfg=cfg, device=job.device, status=status)
        save_sealed(self.ck_path, {"format": CHECKPOINT_FORMAT, "manifest": manifest, "state": state})

    def run(self, job: FrameJob, quiet: bool = False) -> int:
        """Render every frame; write the output. Returns the exit code (0, or 130 after Ctrl-C)."""
        from tqdm import tqdm

        from cnnvis.recipes.recon import to_hwc

        resume = RESUME_STATE.get()
        if resume is not None and VIDEO_STATE not in resume:
            raise InputError(
                "the checkpoint is an image render's, not a video run's; resume it with the command that made it"
            )
        begin_work()  # a Ctrl-C while loading: stop before anything is written
        output = VideoOutput(self.out, self.info.fps)
        output.start(resume["output"] if resume else None)
        first = int(resume["next"]) if resume else 0
        prev_out = None if not resume or resume["prev_out"] is None else resume["prev_out"].numpy()
        frame_state = resume.get("render") if resume else None
        if resume is None and os.path.exists(self.ck_path):
            os.remove(self.ck_path)  # a stale checkpoint of an earlier run into the same output
        note = audio_note(self.info, self.out)
        if note:
            click.echo(note, err=True)

        total = self.info.frames
        bar = tqdm(total=total, initial=first, disable=quiet, unit="frame", dynamic_ncols=True)
        stop = {"clean": False}
        render = None
        index = first

        def on_step(p):
            bar.set_postfix_str(f"step {p.step}/{p.total} score {p.score:.3g}", refresh=False)
            bar.refresh()
            if interrupts.asked():
                stop["clean"] = True  # between steps: the frame's render state is whole
                raise KeyboardInterrupt

        prev_frame = None
        try:
            with VideoReader(self.src, self.info) as reader:
                for index, raw in enumerate(reader):
                    frame = to_float_rgb(raw)
                    if index >= first:
                        render = None  # until this frame's render exists, a render state would be the last frame's
                        render = job.make_render(index, frame, prev_frame, prev_out)
                        result = to_hwc(render.run(on_step, resume=frame_state))
                        frame_state = None
                        output.write((result * 255.0).round().astype(np.uint8))
                        prev_out = result
                        bar.update(1)
                        if job.describe is not None:
                            bar.set_postfix_str(job.describe(index, frame, result))
                        done = index + 1
                        if self.checkpoint_every and done % self.checkpoint_every == 0:
                            output.cut()
                            self._save_checkpoint(
                                job,
                                render,
                                done,
                                prev_out,
                                output,
                                f"checkpoint after frame {done}" + (f" of {total}" if total else ""),
                            )
                        if interrupts.asked():
                            stop["clean"] = True
                            raise KeyboardInterrupt  # between frames
                    prev_frame = frame
        except KeyboardInterrupt:
            bar.close()
            inner = (
                render.checkpoint()
                if stop["clean"] and render is not None and render.param is not None and output.frames == index
                else None
            )
            where, ck = self._keep(
                job,
                render,
                output,
                prev_out,
                f"interrupted in frame {output.frames + 1}" + (f" of {total}" if total else ""),
                inner,
            )
            if where:
                click.echo(f"interrupted: {output.frames} frames written to {where}")
            if ck:
                click.echo(f"checkpoint written to {ck}; finish the run with: cnnvis resume {ck}")
            return interrupts.exit_code()
        except CorruptVideoError as e:
            bar.close()
            where, _ = self._keep(job, render, output, prev_out, "", None, checkpoint=False)
            kept = f"; the {output.frames} frames done are in '{where}'" if where else ""
            raise InputError(f"{e}{kept}") from None
        except InputError:
            bar.close()
            try:
                if output.frames:
                    self._keep(job, render, output, prev_out, f"failed in frame {output.frames + 1}", None)
                else:
                    output.discard()
            except InputError:
                pass  # a disk still full: the first failure is the one to report
            raise
        except BaseException:
            bar.close()
            where, ck = self._keep(job, render, output, prev_out, f"failed in frame {output.frames + 1}", None)
            if where or ck:
                click.echo(
                    f"error: {output.frames} frames kept in {where}"
                    + (f"; go on with: cnnvis resume {ck}" if ck else ""),
                    err=True,
                )
            raise
        bar.close()
        note = output.finish(self.src if self.info.audio and output.kind == "mp4" else None)
        if note:
            click.echo(f"note: {note}", err=True)
        manifest = current_manifest(
            model=job.model, cfg=render.cfg if render is not None else job.cfg, device=job.device
        )
        if manifest is not None:
            write_sidecar(base_path(self.out), manifest)  # a video has no text chunk: the sidecar only
        if os.path.exists(self.ck_path):
            os.remove(self.ck_path)  # the run is finished: its checkpoint is spent
        if job.summary is not None and (line := job.summary()):
            click.echo(line)
        if not quiet:
            click.echo(f"wrote {self.out} ({output.frames} frames)")
        return 0

    def _keep(
        self, job: FrameJob, render, output: VideoOutput, prev_out, status: str, inner, checkpoint: bool = True
    ) -> tuple[str | None, str | None]:
        """After an interruption or an error: make the frames done playable and, with
        ``checkpoint``, write the checkpoint. Returns (where the frames are, the checkpoint path),
        None for what was not written."""
        whole = True
        try:
            output.cut()
        except Exception:
            output.abort()  # the open segment cannot be finished: its frames are lost with it
            whole = False  # and the previous result no longer matches the frames kept
        where = output.salvage(self.src if self.info.audio and output.kind == "mp4" else None)
        if not (checkpoint and whole):
            return where, None
        self._save_checkpoint(job, render, output.frames, prev_out if output.frames else None, output, status, inner)
        return where, self.ck_path
