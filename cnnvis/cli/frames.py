"""Frame-by-frame rendering of videos for ``dream`` and ``invert``: read, start, render, write, checkpoint.

Frames stream in (:class:`cnnvis.io.video.VideoReader`) and out (:class:`cnnvis.io.segments.VideoOutput`)
one at a time, so memory does not grow with the clip. Each frame is an ordinary render whose start
the command builds from the previous frame's result (:mod:`cnnvis.video.coherence`). One bar
counts frames, with an ETA. Which frames remain, the frame-to-frame state and the checkpoint's
contents are the library's (:mod:`cnnvis.recipes.video`); this module reads, writes, draws the bar
and handles Ctrl-C and errors.

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

from cnnvis.cli import interrupts
from cnnvis.cli.checkpoints import CHECKPOINT_FORMAT, RESUME_STATE
from cnnvis.cli.interrupts import begin_work
from cnnvis.cli.recording import current_manifest
from cnnvis.errors import InputError
from cnnvis.io.manifest import write_sidecar
from cnnvis.io.segments import VideoOutput, base_path, check_output, output_kind
from cnnvis.io.video import CorruptVideoError, VideoReader, probe
from cnnvis.recipes.video import FrameCursor, checkpoint_state, frame_pixels, remaining_frames


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
    return (
        f"note: {what} cannot hold the audio of '{info.path}' ({info.audio}); "
        f"'{out}' is written without it (write a .mp4 to keep it)"
    )


class _FrameLoop:
    """One pass of :meth:`VideoRun.run` over the frames: renders, writes and checkpoints each
    remaining frame, and remembers whether a Ctrl-C stopped it cleanly (between two steps or two
    frames, where the state is whole) for the handlers that run after it."""

    def __init__(self, video: VideoRun, job: FrameJob, cursor: FrameCursor, output: VideoOutput, bar):
        self.video, self.job, self.cursor, self.output, self.bar = video, job, cursor, output, bar
        self.clean = False

    def on_step(self, p) -> None:
        """The render's progress callback: the step on the bar; a Ctrl-C stops here, between steps."""
        self.bar.set_postfix_str(f"step {p.step}/{p.total} score {p.score:.3g}", refresh=False)
        self.bar.refresh()
        if interrupts.asked():
            self.clean = True  # between steps: the frame's render state is whole
            raise KeyboardInterrupt

    def render_all(self) -> None:
        """Every remaining frame, in order (KeyboardInterrupt after a Ctrl-C)."""
        with VideoReader(self.video.src, self.video.info) as reader:
            for index, frame, prev_frame in remaining_frames(reader, self.cursor.next):
                self.render_one(index, frame, prev_frame)

    def render_one(self, index: int, frame, prev_frame) -> None:
        """Render frame ``index`` (``frame``, ``prev_frame``: (H, W, 3) float32 in [0, 1], ``prev_frame``
        None for frame 0), write it, move the cursor on, and checkpoint when one is due."""
        job, bar = self.job, self.bar
        result = self.cursor.render_frame(job.make_render, index, frame, prev_frame, self.on_step)
        self.output.write(frame_pixels(result))
        self.cursor.keep(result)  # after the write: a checkpoint's previous result matches the frames kept
        bar.update(1)
        if job.describe is not None:
            bar.set_postfix_str(job.describe(index, frame, result))
        done = self.cursor.next
        if self.video.checkpoint_every and done % self.video.checkpoint_every == 0:
            self.output.cut()
            status = f"checkpoint after frame {done}{self.video.of_total()}"
            self.video.save_checkpoint(self.job, self.cursor.render, done, result, self.output, status)
        if interrupts.asked():
            self.clean = True
            raise KeyboardInterrupt  # between frames


class VideoRun:
    """One video through a :class:`FrameJob`. Built before the model loads: it checks the input
    (readable, at least one frame) and the output, so bad input fails at once."""

    def __init__(self, src: str, out: str, checkpoint_every: int = 0):
        if checkpoint_every < 0:
            raise InputError(
                "--checkpoint-every must be >= 0 (frames between checkpoints; 0 = only on Ctrl-C), "
                f"got {checkpoint_every}"
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

    def run(self, job: FrameJob, quiet: bool = False) -> int:
        """Render every frame; write the output. Returns the exit code (0, or 130 after Ctrl-C)."""
        from tqdm import tqdm

        resume = RESUME_STATE.get()
        cursor = FrameCursor.resumed(resume)
        begin_work()  # a Ctrl-C while loading: stop before anything is written
        output = VideoOutput(self.out, self.info.fps)
        output.start(cursor.output_state)
        if resume is None:
            self._remove_checkpoint()  # a stale checkpoint of an earlier run into the same output
        note = audio_note(self.info, self.out)
        if note:
            click.echo(note, err=True)
        bar = tqdm(total=self.info.frames, initial=cursor.next, disable=quiet, unit="frame", dynamic_ncols=True)
        loop = _FrameLoop(self, job, cursor, output, bar)
        try:
            try:
                loop.render_all()
            finally:
                bar.close()  # before any line is printed below
        except KeyboardInterrupt:
            return self._interrupted(loop)
        except CorruptVideoError as e:
            raise self._corrupt(loop, e) from None
        except InputError:
            self._failed_on_input(loop)
            raise
        except BaseException:
            self._failed(loop)
            raise
        return self._finish(job, output, cursor.render, quiet)

    def of_total(self) -> str:
        """`` of N`` for a status line, when the input says how many frames it has."""
        return f" of {self.info.frames}" if self.info.frames else ""

    def _audio_from(self, output: VideoOutput) -> str | None:
        """The input whose audio goes into ``output``: only an MP4 holds audio."""
        return self.src if self.info.audio and output.kind == "mp4" else None

    def _remove_checkpoint(self) -> None:
        if os.path.exists(self.ck_path):
            os.remove(self.ck_path)

    def save_checkpoint(
        self,
        job: FrameJob,
        render,
        nxt: int,
        prev_out,
        output: VideoOutput,
        status: str,
        frame_state: dict | None = None,
    ) -> None:
        """Write ``NAME.ckpt``: going on from frame ``nxt`` (``prev_out`` the result before it,
        ``frame_state`` its render state), the output's state and the manifest with ``status``."""
        from cnnvis.io.checkpoint import save_sealed

        state = checkpoint_state(nxt, prev_out, output.state(), frame_state)
        cfg = render.cfg if render is not None else job.cfg
        manifest = current_manifest(model=job.model, cfg=cfg, device=job.device, status=status)
        save_sealed(self.ck_path, {"format": CHECKPOINT_FORMAT, "manifest": manifest, "state": state})

    def _finish(self, job: FrameJob, output: VideoOutput, render, quiet: bool) -> int:
        """After the last frame: join the output (with the input's audio), write the sidecar
        manifest, drop the spent checkpoint and print the summary and the "wrote" line."""
        note = output.finish(self._audio_from(output))
        if note:
            click.echo(f"note: {note}", err=True)
        manifest = current_manifest(
            model=job.model, cfg=render.cfg if render is not None else job.cfg, device=job.device
        )
        if manifest is not None:
            write_sidecar(base_path(self.out), manifest)  # a video has no text chunk: the sidecar only
        self._remove_checkpoint()  # the run is finished: its checkpoint is spent
        if job.summary is not None and (line := job.summary()):
            click.echo(line)
        if not quiet:
            click.echo(f"wrote {self.out} ({output.frames} frames)")
        return 0

    def _interrupted(self, loop: _FrameLoop) -> int:
        """After Ctrl-C: keep the frames done and a checkpoint (with the frame's render state after a
        clean stop inside it), say where, and return the interrupt's exit code."""
        output = loop.output
        inner = loop.cursor.mid_frame_state(output.frames) if loop.clean else None
        where, ck = self._keep(loop, f"interrupted in frame {output.frames + 1}{self.of_total()}", inner)
        if where:
            click.echo(f"interrupted: {output.frames} frames written to {where}")
        if ck:
            click.echo(f"checkpoint written to {ck}; finish the run with: cnnvis resume {ck}")
        return interrupts.exit_code()

    def _corrupt(self, loop: _FrameLoop, e: CorruptVideoError) -> InputError:
        """After an unreadable input frame: keep the frames done (no checkpoint: the input cannot
        go on) and return the error that names them."""
        where, _ = self._keep(loop, "", None, checkpoint=False)
        kept = f"; the {loop.output.frames} frames done are in '{where}'" if where else ""
        return InputError(f"{e}{kept}")

    def _failed_on_input(self, loop: _FrameLoop) -> None:
        """After an input error while running (a full disk, say): keep the frames done, if any."""
        output = loop.output
        try:
            if output.frames:
                self._keep(loop, f"failed in frame {output.frames + 1}", None)
            else:
                output.discard()
        except InputError:
            pass  # a disk still full: the first failure is the one to report

    def _failed(self, loop: _FrameLoop) -> None:
        """After any other error: keep the frames done and a checkpoint, and say where."""
        output = loop.output
        where, ck = self._keep(loop, f"failed in frame {output.frames + 1}", None)
        if where or ck:
            click.echo(
                f"error: {output.frames} frames kept in {where}" + (f"; go on with: cnnvis resume {ck}" if ck else ""),
                err=True,
            )

    def _keep(
        self, loop: _FrameLoop, status: str, inner: dict | None, checkpoint: bool = True
    ) -> tuple[str | None, str | None]:
        """After an interruption or an error: make the frames done playable and, with
        ``checkpoint``, write the checkpoint. Returns (where the frames are, the checkpoint path),
        None for what was not written."""
        output = loop.output
        whole = True
        try:
            output.cut()
        except Exception:
            output.abort()  # the open segment cannot be finished: its frames are lost with it
            whole = False  # and the previous result no longer matches the frames kept
        where = output.salvage(self._audio_from(output))
        if not (checkpoint and whole):
            return where, None
        prev_out = loop.cursor.prev_out if output.frames else None
        self.save_checkpoint(loop.job, loop.cursor.render, output.frames, prev_out, output, status, inner)
        return where, self.ck_path
