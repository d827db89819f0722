"""The output of a video run, written frame by frame, that an interrupted run can go on with.

Three forms, chosen by ``--out``:

- ``NAME.mp4``: frames stream into H.264 segments ``NAME.parts/seg_FFFFFF.mp4`` (F: the first
  frame), a new one after every checkpoint, so a segment is finished whenever a checkpoint
  names it; :meth:`VideoOutput.finish` joins them without re-encoding and adds the input's audio.
- ``NAME.gif``: frames are PNGs in ``NAME.parts/``; the GIF is written from them at the end.
- ``FOLDER/`` (a trailing slash, or an existing folder): a PNG sequence ``FOLDER/frame_000001.png``
  ... (lossless; editors import it as an image sequence), nothing to put together.

:meth:`VideoOutput.state` is what a checkpoint stores; :meth:`VideoOutput.restore` continues
from it. Memory does not depend on the number of frames, except for a GIF's final write.
"""

from __future__ import annotations

import glob
import os

import numpy as np

from cnnvis.errors import InputError
from cnnvis.io.files import check_folder_writable, make_folder
from cnnvis.io.video_out import Mp4Writer, frame_name, join_mp4, write_gif

_SEGMENT = "seg_{:06d}.mp4"


def output_kind(out: str) -> str:
    """``mp4``, ``gif`` or ``frames`` (a folder: a trailing slash or an existing directory)."""
    if out.endswith(("/", os.sep)) or os.path.isdir(out):
        return "frames"
    ext = os.path.splitext(out)[1].lower()
    if ext in (".mp4", ".gif"):
        return ext[1:]
    raise InputError(
        f"cannot write a video to '{out}': for a video input --out must be a video (.mp4 or .gif) "
        "or a folder for PNG frames (e.g. --out frames/)"
    )


def base_path(out: str) -> str:
    """``out`` without a trailing slash: ``frames/`` -> ``frames`` (its checkpoint is ``frames.ckpt``)."""
    return out.rstrip("/" + os.sep) or out


def check_output(out: str) -> str:
    """Raise InputError unless a video can be written to ``out``; return its kind."""
    kind = output_kind(out)
    parent = os.path.dirname(os.path.abspath(base_path(out))) or "."
    if not os.path.isdir(parent):
        raise InputError(
            f"cannot write '{out}': directory '{parent}' does not exist; create it or choose another --out"
        )
    check_folder_writable(parent, base_path(out))  # really writable: os.access says yes to root on a read-only mount
    if kind != "frames" and os.path.isdir(out):
        raise InputError(
            f"cannot write '{out}': it is a directory; give a file name such as out.mp4, or frames/ for PNG frames"
        )
    return kind


def interrupted_path(out: str) -> str:
    """``dir/name.mp4`` -> ``dir/name.interrupted.mp4``: the frames an interrupted run finished."""
    stem, ext = os.path.splitext(out)
    return f"{stem}.interrupted{ext}"


class VideoOutput:
    """Frames 0, 1, 2, ... of a run, written as they come (uint8 (H, W, 3) each).

    Args:
        out: ``NAME.mp4``, ``NAME.gif`` or ``FOLDER/``.
        fps: frames per second of the output (the input's).
    """

    def __init__(self, out: str, fps: float):
        self.out, self.fps = out, float(fps)
        self.kind = check_output(out)
        self.base = base_path(out)
        self.parts = self.base if self.kind == "frames" else os.path.splitext(self.base)[0] + ".parts"
        self.frames = 0  # frames written
        self.segments: list[str] = []  # mp4: finished segment file names, in order
        self._writer: Mp4Writer | None = None

    # ---------------------------------------------------------------- starting
    def start(self, resume: dict | None = None) -> None:
        """Begin afresh (stale parts of an earlier run into the same ``out`` are removed; a PNG
        folder must hold no frames yet), or go on from a checkpoint's :meth:`state`."""
        if resume is None:
            if self.kind == "frames" and glob.glob(os.path.join(glob.escape(self.parts), "frame_*.png")):
                raise InputError(
                    f"--out '{self.out}' already holds frame_*.png files; "
                    "empty it or choose another folder (or finish its run with cnnvis resume)"
                )
            self._clear_parts()
        else:
            self._restore(resume)
        make_folder(self.parts)

    def _restore(self, state: dict) -> None:
        if state.get("kind") != self.kind:
            raise InputError(
                f"the checkpoint wrote a {state.get('kind')} output, not '{self.out}'; "
                "resume it with the command that made it"
            )
        self.frames, self.segments = int(state["frames"]), list(state.get("segments", []))
        missing = [p for p in self._done_files() if not os.path.isfile(p)]
        if missing:
            raise InputError(
                f"'{missing[0]}' of the interrupted run is missing, so it cannot go on; "
                "run the command again from the start"
            )
        keep = set(map(os.path.abspath, self._done_files()))
        for stray in self._own_files():
            if os.path.abspath(stray) not in keep:
                os.unlink(stray)  # written after the checkpoint: those frames are rendered again

    def _done_files(self) -> list[str]:
        if self.kind == "mp4":
            return [os.path.join(self.parts, s) for s in self.segments]
        return [os.path.join(self.parts, frame_name(i)) for i in range(self.frames)]

    def _own_files(self) -> list[str]:
        if not os.path.isdir(self.parts):
            return []
        # with the hidden temporaries of files a killed run was writing (.seg_000012.x7f3a.mp4)
        patterns = ("seg_*.mp4", ".seg_*") if self.kind == "mp4" else ("frame_*.png", ".frame_*")
        return sorted(p for pattern in patterns for p in glob.glob(os.path.join(glob.escape(self.parts), pattern)))

    def _clear_parts(self) -> None:
        if self.kind == "frames" or not os.path.isdir(self.parts):
            return
        for path in self._own_files():
            os.unlink(path)
        if not os.listdir(self.parts):
            os.rmdir(self.parts)

    # ---------------------------------------------------------------- writing
    def write(self, frame: np.ndarray) -> None:
        """Append frame ``self.frames`` (uint8 (H, W, 3))."""
        if self.kind == "mp4":
            if self._writer is None:
                self._writer = Mp4Writer(os.path.join(self.parts, _SEGMENT.format(self.frames)), self.fps)
            try:
                self._writer.write(frame)
            except BaseException:
                self.abort()  # the open segment is lost: its frames go with it
                raise
        else:
            from cnnvis.io.images import save_image

            save_image(os.path.join(self.parts, frame_name(self.frames)), frame)
        self.frames += 1

    def cut(self) -> None:
        """Finish the open MP4 segment, so that every frame written so far is in finished files
        (before a checkpoint is written)."""
        if self._writer is not None:
            w, self._writer = self._writer, None
            w.close()
            self.segments.append(os.path.basename(w.path))

    def abort(self) -> None:
        """Drop the open MP4 segment (an error while writing it)."""
        if self._writer is not None:
            w, self._writer = self._writer, None
            self.frames -= w.frames
            w.abort()

    def discard(self) -> None:
        """Nothing worth keeping was written: drop the open segment and an empty parts folder."""
        self.abort()
        if self.frames == 0:
            self._clear_parts()

    def state(self) -> dict:
        """What a checkpoint stores (call :meth:`cut` first)."""
        return {"kind": self.kind, "frames": self.frames, "segments": list(self.segments)}

    # ---------------------------------------------------------------- ending
    def _frames_from_pngs(self):
        import imageio.v3 as iio

        for i in range(self.frames):
            yield iio.imread(os.path.join(self.parts, frame_name(i)))

    def _join(self, path: str, audio_from: str | None) -> str | None:
        self.cut()
        segs = [os.path.join(self.parts, s) for s in self.segments]
        if self.kind == "mp4":
            if not segs:
                return None  # every frame was in a segment that could not be finished
            return join_mp4(segs, path, audio_from, self.frames / self.fps)
        write_gif(path, self._frames_from_pngs(), self.fps)
        return None

    def finish(self, audio_from: str | None = None) -> str | None:
        """Write the final output (MP4: the segments joined, with the audio of ``audio_from``);
        remove the parts. Returns a note about the audio, or None."""
        note = None
        if self.kind != "frames":
            note = self._join(self.out, audio_from)
            for path in self._own_files():
                os.unlink(path)
            if os.path.isdir(self.parts) and not os.listdir(self.parts):
                os.rmdir(self.parts)
        return note

    def salvage(self, audio_from: str | None = None) -> str | None:
        """Make the frames written so far playable; return where they are (``NAME.interrupted.EXT``,
        or the PNG folder), or None if there are none. The parts stay for a resumed run."""
        self.cut()
        if not self.frames or (self.kind == "mp4" and not self.segments):
            return None
        if self.kind == "frames":
            return self.out
        path = interrupted_path(self.out)
        self._join(path, audio_from)
        return path
