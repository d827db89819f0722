"""A clip rendered frame by frame to a video file: read, start, render, write, checkpoint.

Frames stream in (:class:`cnnvis.io.video.VideoReader`) and out (:class:`cnnvis.io.segments.VideoOutput`)
one at a time, so memory does not grow with the clip. Each frame is an ordinary render whose start
the command builds from the previous frame's result (:mod:`cnnvis.video.coherence`); the cursor and
the checkpoint's state are :mod:`cnnvis.recipes.video`'s. The caller sees the run through
:class:`VideoEvents` (progress, notes, whether to stop) and its :class:`VideoOutcome`; nothing here
prints.

A stop asked between two steps or two frames writes the frames done (``NAME.interrupted.EXT``, or
the PNG folder itself) and the checkpoint ``NAME.ckpt``; resuming from it renders, on CPU, the
frames an uninterrupted run renders, bit for bit, because the checkpoint keeps the previous result
in float32 and each frame's start is a deterministic function of it and of the decoded input
frames. ``checkpoint_every`` writes the checkpoint every N frames, so a crash (even ``kill -9``)
loses at most N frames. An error while running (a corrupt input frame included) keeps the frames
done and a checkpoint too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cnnvis.errors import InputError
from cnnvis.io.checkpoint import CHECKPOINT_FORMAT, checkpoint_path, remove_checkpoint, save_sealed
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
    ``describe(index, frame, out)`` returns a short figure for the progress after each frame, and
    ``summary()`` a line for the end (both optional). ``manifest(cfg, status)`` is the manifest
    of the run under the settings ``cfg`` (None for none); ``cfg`` is used before any frame's
    render exists.
    """

    make_render: Callable
    cfg: object = None
    manifest: Callable[[object, str], dict | None] = lambda cfg, status: None
    describe: Callable | None = None
    summary: Callable[[], str | None] | None = None


def _nothing(*_args) -> None:
    return None


@dataclass
class VideoEvents:
    """What the caller sees of a run while it goes.

    Attributes:
        started: ``(total, done)`` frames once, before the first render (total 0: unknown).
        step: every step's :class:`cnnvis.pipeline.progress.Progress`.
        frame: after every frame, the job's ``describe`` figure (or None).
        note: a line worth telling the user (audio that the output cannot hold, say).
        stop_asked: polled between steps and between frames: True stops the run cleanly.
    """

    started: Callable[[int, int], None] = _nothing
    step: Callable = _nothing
    frame: Callable[[str | None], None] = _nothing
    note: Callable[[str], None] = _nothing
    stop_asked: Callable[[], bool] = lambda: False


@dataclass
class VideoOutcome:
    """How a run ended. ``stopped``: a stop was asked; ``where``: the frames done when the output
    is not whole (None: the output itself, or nothing); ``checkpoint``: the checkpoint written, to
    resume from; ``summary``: the job's closing line."""

    frames: int = 0
    stopped: bool = False
    where: str | None = None
    checkpoint: str | None = None
    summary: str | None = None


def _settings(job: FrameJob, render):
    """The settings a manifest records: the last frame's render's, or the job's before any render."""
    return render.cfg if render is not None else job.cfg


class _Stop(Exception):
    """A stop asked between two steps or two frames, where the state is whole."""


def audio_note(info, out: str) -> str | None:
    """The line to tell when the input has audio that ``out`` cannot hold (a GIF, PNG frames)."""
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
    remaining frame, and remembers whether a stop came cleanly (between two steps or two frames,
    where the state is whole) for the handlers that run after it."""

    def __init__(self, video: VideoRun, job: FrameJob, cursor: FrameCursor, output: VideoOutput, events):
        self.video, self.job, self.cursor, self.output, self.events = video, job, cursor, output, events
        self.clean = False

    def on_step(self, p) -> None:
        """The render's progress callback: a stop asked is taken here, between steps."""
        self.events.step(p)
        if self.events.stop_asked():
            self.clean = True  # between steps: the frame's render state is whole
            raise _Stop

    def render_all(self) -> None:
        """Every remaining frame, in order (:class:`_Stop` when a stop is asked)."""
        with VideoReader(self.video.src, self.video.info) as reader:
            for index, frame, prev_frame in remaining_frames(reader, self.cursor.next):
                self.render_one(index, frame, prev_frame)

    def render_one(self, index: int, frame, prev_frame) -> None:
        """Render frame ``index`` (``frame``, ``prev_frame``: (H, W, 3) float32 in [0, 1], ``prev_frame``
        None for frame 0), write it, move the cursor on, and checkpoint when one is due."""
        job = self.job
        result = self.cursor.render_frame(job.make_render, index, frame, prev_frame, self.on_step)
        self.output.write(frame_pixels(result))
        self.cursor.keep(result)  # after the write: a checkpoint's previous result matches the frames kept
        self.events.frame(None if job.describe is None else job.describe(index, frame, result))
        done = self.cursor.next
        if self.video.checkpoint_every and done % self.video.checkpoint_every == 0:
            self.output.cut()
            status = f"checkpoint after frame {done}{self.video.of_total()}"
            self.video.save_checkpoint(job, self.cursor.render, done, result, self.output, status)
        if self.events.stop_asked():
            self.clean = True
            raise _Stop  # between frames


class VideoRun:
    """One video through a :class:`FrameJob`. Built before the model loads: it checks the input
    (readable, at least one frame) and the output, so bad input fails at once.

    Args:
        src: the input video.
        out: the output: a video file or a folder of PNG frames (:mod:`cnnvis.io.segments`).
        checkpoint_every: frames between checkpoints (0: only when stopped or failed).

    Attributes:
        outcome: after :meth:`run`, returned or raised from, how it ended.
    """

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
        self.outcome = VideoOutcome()

    def run(self, job: FrameJob, events: VideoEvents | None = None, resume: dict | None = None) -> VideoOutcome:
        """Render every remaining frame and write the output; ``resume``: a checkpoint's state to
        go on from. A stop returns the outcome with ``stopped``; an error keeps the frames done (in
        :attr:`outcome`) and is raised."""
        events = events or VideoEvents()
        cursor = FrameCursor.resumed(resume)
        output = VideoOutput(self.out, self.info.fps)
        output.start(cursor.output_state)
        if resume is None:
            remove_checkpoint(self.ck_path)  # a stale checkpoint of an earlier run into the same output
        note = audio_note(self.info, self.out)
        if note:
            events.note(note)
        events.started(self.info.frames, cursor.next)
        loop = _FrameLoop(self, job, cursor, output, events)
        try:
            loop.render_all()
        except (_Stop, KeyboardInterrupt):
            return self._stopped(loop)
        except CorruptVideoError as e:
            raise self._corrupt(loop, e) from None
        except InputError:
            self._failed_on_input(loop)
            raise
        except BaseException:
            self._keep(loop, f"failed in frame {output.frames + 1}", None)
            raise
        return self._finish(job, output, cursor.render, events)

    def of_total(self) -> str:
        """`` of N`` for a status line, when the input says how many frames it has."""
        return f" of {self.info.frames}" if self.info.frames else ""

    def _audio_from(self, output: VideoOutput) -> str | None:
        """The input whose audio goes into ``output``: only an MP4 holds audio."""
        return self.src if self.info.audio and output.kind == "mp4" else None

    def save_checkpoint(self, job: FrameJob, render, nxt: int, prev_out, output: VideoOutput, status: str, inner=None):
        """Write ``NAME.ckpt``: going on from frame ``nxt`` (``prev_out`` the result before it,
        ``inner`` its render state), the output's state and the manifest with ``status``."""
        state = checkpoint_state(nxt, prev_out, output.state(), inner)
        manifest = job.manifest(_settings(job, render), status)
        save_sealed(self.ck_path, {"format": CHECKPOINT_FORMAT, "manifest": manifest, "state": state})

    def _finish(self, job: FrameJob, output: VideoOutput, render, events: VideoEvents) -> VideoOutcome:
        """After the last frame: join the output (with the input's audio), write the sidecar
        manifest and drop the spent checkpoint."""
        note = output.finish(self._audio_from(output))
        if note:
            events.note(f"note: {note}")
        manifest = job.manifest(_settings(job, render), "complete")
        if manifest is not None:
            write_sidecar(base_path(self.out), manifest)  # a video has no text chunk: the sidecar only
        remove_checkpoint(self.ck_path)  # the run is finished: its checkpoint is spent
        self.outcome = VideoOutcome(output.frames, summary=job.summary() if job.summary is not None else None)
        return self.outcome

    def _stopped(self, loop: _FrameLoop) -> VideoOutcome:
        """After a stop: keep the frames done and a checkpoint (with the frame's render state
        after a clean stop inside it)."""
        output = loop.output
        inner = loop.cursor.mid_frame_state(output.frames) if loop.clean else None
        self._keep(loop, f"interrupted in frame {output.frames + 1}{self.of_total()}", inner)
        self.outcome.stopped = True
        return self.outcome

    def _corrupt(self, loop: _FrameLoop, e: CorruptVideoError) -> InputError:
        """After an unreadable input frame: keep the frames done (no checkpoint: the input cannot
        go on) and return the error that names them."""
        where = self._keep(loop, "", None, checkpoint=False)
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
        except (InputError, OSError):
            pass  # a disk still full: the first failure is the one to report

    def _keep(self, loop: _FrameLoop, status: str, inner: dict | None, checkpoint: bool = True) -> str | None:
        """After a stop or an error: make the frames done playable and, with ``checkpoint``, write
        the checkpoint; :attr:`outcome` says where each is. Returns where the frames are."""
        output = loop.output
        whole = True
        try:
            output.cut()
        except Exception:
            output.abort()  # the open segment cannot be finished: its frames are lost with it
            whole = False  # and the previous result no longer matches the frames kept
        where = output.salvage(self._audio_from(output))
        self.outcome = VideoOutcome(output.frames, where=where)
        if checkpoint and whole:
            prev_out = loop.cursor.prev_out if output.frames else None
            self.save_checkpoint(loop.job, loop.cursor.render, output.frames, prev_out, output, status, inner)
            self.outcome.checkpoint = self.ck_path
        return where
