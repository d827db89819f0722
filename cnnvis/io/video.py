"""Video files in, one frame at a time: which paths are videos, what a video holds, its frames.

Frames stream from the ffmpeg binary that imageio-ffmpeg ships
(``imageio_ffmpeg.get_ffmpeg_exe``), with the decoding options of ``imageio_ffmpeg.read_frames``
(rgb24 through image2pipe), so memory does not grow with the clip; every decoded frame comes
once (no constant-rate repeats). The process is run here rather than through ``read_frames``
because that generator ends quietly on a truncated file (ffmpeg exits 0 after "partial file")
and drops ffmpeg's exit code: this reader keeps both and raises :class:`CorruptVideoError` after
the last good frame. ffmpeg also ends a GIF cut short with exit code 0, after a half-decoded
last frame; a GIF without its trailer byte is therefore counted through Pillow first, and the
reader stops after the frames that decode whole.
"""

from __future__ import annotations

import collections
import os
import subprocess
import threading
from dataclasses import dataclass

import numpy as np

from cnnvis.errors import InputError

VIDEO_SUFFIXES = (".mp4", ".gif", ".avi", ".mov", ".mkv", ".webm", ".m4v")
_TRUNCATED = ("partial file", "Invalid data found", "moov atom not found", "End of file")


def is_video(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in VIDEO_SUFFIXES


class CorruptVideoError(InputError):
    """The video stops being readable after ``frames`` good frames (truncated or corrupt)."""

    def __init__(self, message: str, frames: int):
        super().__init__(message)
        self.frames = frames


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds: frame rate (frames per second), frame size (H, W) in pixels, the
    number of frames (None when ffmpeg cannot count them without decoding) and the audio codec
    (None: no audio track)."""

    path: str
    fps: float
    size: tuple[int, int]
    frames: int | None
    audio: str | None


def _first_error(text: str) -> str:
    """The most telling line of ffmpeg's log, shortened (for a one-line message)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("===")]
    for key in _TRUNCATED + ("Error", "error", "Invalid"):
        for ln in lines:
            if key in ln:
                return ln.split("] ")[-1][:100]
    return (lines[-1] if lines else "unreadable")[:100]


def probe(path: str) -> VideoInfo:
    """The :class:`VideoInfo` of ``path``, from ffmpeg's header (imageio-ffmpeg parses it).

    Raises:
        InputError: a missing file, one ffmpeg cannot open (corrupt, truncated before its
            index, not a video) or one without a video stream.
    """
    import imageio_ffmpeg

    if not os.path.isfile(path):
        raise InputError(f"video '{path}' does not exist; check the path")
    gen = imageio_ffmpeg.read_frames(path)
    try:
        meta = next(gen)
    except (IndexError, KeyError):  # the header has no video stream line
        raise InputError(
            f"video '{path}' has no frames (no video stream); give a video with at least one frame"
        ) from None
    except Exception as e:  # imageio-ffmpeg raises IOError/RuntimeError with ffmpeg's log
        if "Input #0" in str(e) and " Video: " not in str(e):  # ffmpeg opened it: audio or data only
            raise InputError(
                f"video '{path}' has no frames (no video stream); give a video with at least one frame"
            ) from None
        raise InputError(
            f"cannot read video '{path}' ({_first_error(str(e))}): it is corrupt, truncated or not a video; "
            "give an .mp4 or .gif that ffmpeg can play"
        ) from None
    finally:
        gen.close()
    try:
        frames, _ = imageio_ffmpeg.count_frames_and_secs(path)  # a stream copy: no decoding
    except Exception:
        frames = None
    w, h = meta["size"]
    fps = float(meta.get("fps") or 0.0)
    if not fps > 0:
        fps = 10.0  # ffmpeg found no rate (a still image stream): play at 10 frames a second
    return VideoInfo(path=path, fps=fps, size=(int(h), int(w)), frames=frames or None, audio=meta.get("audio_codec"))


def gif_good_frames(path: str) -> int | None:
    """For a GIF cut short (its last byte is not the trailer 0x3B), the number of frames Pillow
    decodes whole before the cut; None for a GIF that ends with its trailer, for one whose frames
    all decode, for a GIF Pillow cannot open and for any other file."""
    from PIL import Image, ImageSequence

    try:
        with open(path, "rb") as f:
            if f.read(6) not in (b"GIF87a", b"GIF89a"):
                return None
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\x3b":
                return None
        im = Image.open(path)
    except Exception:  # unreadable, or too large for Pillow: ffmpeg's reading decides
        return None
    good = 0
    with im:
        try:
            for frame in ImageSequence.Iterator(im):  # one frame in memory at a time
                frame.load()
                good += 1
        except Exception:  # Pillow raises OSError, IndexError, ... where the data stops
            return good
    return None  # no frame is cut: the file only lacks its trailer


class VideoReader:
    """Iterate over the frames of a video, uint8 (H, W, 3) RGB, one at a time.

    Use as a context manager (or call :meth:`close`): the ffmpeg process ends with it. After the
    last good frame of a truncated or corrupt file, iteration raises :class:`CorruptVideoError`
    (``.frames``: how many frames were good).
    """

    def __init__(self, path: str, info: VideoInfo | None = None):
        import imageio_ffmpeg

        self.info = info or probe(path)
        self.path = path
        self.count = 0
        self._good = gif_good_frames(path)  # before ffmpeg starts: nothing to clean up if it fails
        # -fps_mode passthrough: every decoded frame once. At a constant rate ffmpeg would repeat or
        # drop frames to fill the stream's nominal rate (a 2-frame GIF came out as 20 frames).
        cmd = [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-nostdin",
            "-v",
            "error",
            "-i",
            path,
            "-an",
            "-sn",
            "-fps_mode",
            "passthrough",
            "-pix_fmt",
            "rgb24",
            "-vcodec",
            "rawvideo",
            "-f",
            "image2pipe",
            "-",
        ]
        # Its own session: a Ctrl-C at the terminal goes to cnnvis, which stops between frames,
        # and not to ffmpeg, which would end the stream early.
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )
        self._log: collections.deque[str] = collections.deque(maxlen=50)
        self._log_thread = threading.Thread(target=self._drain, daemon=True)
        self._log_thread.start()
        h, w = self.info.size
        self._nbytes = h * w * 3

    def _drain(self) -> None:
        for line in iter(self.proc.stderr.readline, b""):
            self._log.append(line.decode(errors="replace"))

    def __iter__(self):
        return self

    def __next__(self) -> np.ndarray:
        if self._good is not None and self.count >= self._good:
            raise CorruptVideoError(
                f"video '{self.path}' is corrupt or truncated after frame {self.count} "
                "(the GIF ends in the middle of a frame)",
                self.count,
            )
        buf = self.proc.stdout.read(self._nbytes)
        if len(buf) == self._nbytes:
            self.count += 1
            h, w = self.info.size
            return np.frombuffer(buf, np.uint8).reshape(h, w, 3)
        code = self.proc.wait()
        self._log_thread.join(timeout=5)
        log = "".join(self._log)
        if buf or code != 0 or any(k in log for k in _TRUNCATED[:2]):
            raise CorruptVideoError(
                f"video '{self.path}' is corrupt or truncated after frame {self.count} "
                f"({_first_error(log) if log else f'ffmpeg exit code {code}'})",
                self.count,
            )
        raise StopIteration

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdout.close()
            self.proc.kill()
            self.proc.wait()
        elif not self.proc.stdout.closed:
            self.proc.stdout.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
