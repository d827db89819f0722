"""Video files out, one frame at a time: MP4 through imageio-ffmpeg, PNG frame folders, GIFs, and
MP4 segments joined into one file with the audio of the input (ffmpeg's concat demuxer, stream copy).

Every file appears complete or not at all (written beside its name, then renamed).
"""

from __future__ import annotations

import errno
import os
import subprocess

import numpy as np

from cnnvis.errors import OutputError
from cnnvis.io.files import publish, temporary_beside, write_atomic, write_error, write_text_atomic

FRAME_PATTERN = (
    "frame_{:06d}.png"  # frame i (from 0) of a PNG sequence is frame_{i+1}: ffmpeg's image2 demuxer starts there
)


def frame_name(i: int) -> str:
    """The file name of frame ``i`` (counted from 0) in a PNG sequence folder."""
    return FRAME_PATTERN.format(i + 1)


def even_crop(frame: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) cropped to even sides, as H.264 in yuv420p needs (what :func:`save_video` does)."""
    h, w = (frame.shape[0] // 2) * 2, (frame.shape[1] // 2) * 2
    return np.ascontiguousarray(frame[:h, :w])


# What ffmpeg prints when the disk refuses its output, and the errno it stands for: ffmpeg's
# failure reaches Python only as a broken pipe or an exit code.
_FFMPEG_ERRNOS = {
    "No space left on device": errno.ENOSPC,
    "File too large": errno.EFBIG,
    "Disk quota exceeded": errno.EDQUOT,
    "Read-only file system": errno.EROFS,
    "Permission denied": errno.EACCES,
}


def ffmpeg_os_error(log: str) -> OSError | None:
    """The OSError that ffmpeg's error output ``log`` reports, if it is a write failure."""
    for text, code in _FFMPEG_ERRNOS.items():
        if text in log:
            return OSError(code, os.strerror(code))
    return None


def _disk_error(path: str, tmp: str) -> OSError | None:
    """Why ffmpeg, writing ``tmp`` for ``path``, may have stopped, read from the disk itself: a full
    filesystem or the file-size limit (ffmpeg's own words are kept off the terminal)."""
    import resource

    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(path)))
        if st.f_bavail * st.f_frsize < (256 << 10):
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY and os.path.exists(tmp) and os.path.getsize(tmp) >= soft - (256 << 10):
            return OSError(errno.EFBIG, os.strerror(errno.EFBIG))
    except OSError:
        return None
    return None


def _stream_error(path: str, tmp: str, exc: BaseException) -> BaseException:
    """A failure of the ffmpeg pipe writing ``path`` as one OutputError line: the disk's reason where
    it has one, else ffmpeg's, with the fix."""
    err = write_error(path, ffmpeg_os_error(str(exc)) or _disk_error(path, tmp) or exc)
    if err is not None:
        return err
    first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
    return OutputError(
        f"cannot write '{path}': ffmpeg stopped ({first}); check the disk and the folder, then run the command again"
    )


class Mp4Writer:
    """Stream uint8 (H, W, 3) frames into an H.264 MP4 at ``fps`` frames a second (imageio-ffmpeg's
    ``write_frames``, yuv420p, sides cropped to even). The frames go to a temporary file beside
    ``path``, renamed to ``path`` by :meth:`close`; :meth:`abort` removes it. Memory: one frame."""

    def __init__(self, path: str, fps: float):
        self.path, self.fps = path, float(fps)
        self.tmp = temporary_beside(path)
        self._gen = None
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        import imageio_ffmpeg

        frame = even_crop(frame)
        if self._gen is None:
            h, w = frame.shape[:2]
            # -bf 0: no B-frames. Segments are joined by stream copy, and with B-frames' reordering
            # delay the last frames of a short segment get wrong durations there, which a
            # constant-rate decoder then fills by repeating frames.
            self._gen = imageio_ffmpeg.write_frames(
                self.tmp,
                (w, h),
                fps=self.fps,
                codec="libx264",
                pix_fmt_in="rgb24",
                pix_fmt_out="yuv420p",
                macro_block_size=2,
                ffmpeg_log_level="quiet",
                output_params=["-bf", "0"],
            )
            self._gen.send(None)
        try:
            self._gen.send(frame)
        except Exception as e:
            self.abort()
            raise _stream_error(self.path, self.tmp, e) from None
        self.frames += 1

    def close(self) -> None:
        """Finish the file and move it to ``path`` (nothing is written for zero frames)."""
        try:
            if self._gen is not None:
                gen, self._gen = self._gen, None
                gen.close()
            if self.frames:
                publish(self.tmp, self.path)
            elif os.path.exists(self.tmp):
                os.unlink(self.tmp)
        except Exception as e:
            self.abort()
            raise _stream_error(self.path, self.tmp, e) from None

    def abort(self) -> None:
        """Drop the file being written (its temporary included), whatever state ffmpeg is in."""
        if self._gen is not None:
            gen, self._gen = self._gen, None
            try:
                gen.close()
            except Exception:
                pass  # ffmpeg failed already: that failure is the one being reported
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)


def write_gif(path: str, frames, fps: float) -> int:
    """Write the uint8 (H, W, 3) frames of the iterable ``frames`` as a looping GIF, atomically.
    Pillow holds the (palette) frames until the file is written: GIFs are small by nature.
    Returns the number of frames."""
    import imageio.v3 as iio

    count = [0]

    def write(tmp: str) -> None:
        with iio.imopen(tmp, "w", extension=".gif", plugin="pillow") as f:
            for frame in frames:
                f.write(frame, is_batch=False, duration=1000.0 / fps, loop=0)
                count[0] += 1

    write_atomic(path, write)
    return count[0]


def _ffmpeg(args: list[str]) -> tuple[int, str]:
    import imageio_ffmpeg

    proc = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        start_new_session=True,
    )
    return proc.returncode, proc.stderr.decode(errors="replace")


def join_mp4(
    segments: list[str], path: str, audio_from: str | None = None, duration: float | None = None
) -> str | None:
    """Concatenate MP4 ``segments`` (same size and codec) into ``path`` without re-encoding, with
    the first audio track of ``audio_from`` (its first ``duration`` seconds: the video's length),
    atomically.

    The audio is copied as it is; a codec MP4 cannot hold is encoded to AAC; if that fails too the
    video is written without it. Returns None, or a note saying what became of the audio.
    """
    listing = temporary_beside(os.path.join(os.path.dirname(os.path.abspath(segments[0])), "concat.txt"))
    try:
        # written like every other file: a full disk is one OutputError line naming the listing
        write_text_atomic(
            listing, "".join("file '" + os.path.abspath(seg).replace("'", "'\\''") + "'\n" for seg in segments)
        )
        video = ["-f", "concat", "-safe", "0", "-i", listing]
        out_opts = ["-c:v", "copy", "-movflags", "+faststart"]
        note = None
        if audio_from is not None:
            for acodec in ("copy", "aac"):
                # -t on the audio input, not -shortest: an audio track a few milliseconds short must not cost the
                # last frame
                audio = [
                    *(["-t", f"{duration:.6f}"] if duration else []),
                    "-i",
                    audio_from,
                    "-map",
                    "0:v:0",
                    "-map",
                    "1:a:0",
                    *out_opts,
                    "-c:a",
                    acodec,
                ]
                try:
                    write_atomic(path, lambda tmp, audio=audio: _check(_ffmpeg([*video, *audio, "-f", "mp4", tmp])))
                    return (
                        None
                        if acodec == "copy"
                        else f"the audio of '{audio_from}' was re-encoded to AAC (MP4 cannot hold its codec)"
                    )
                except OSError as e:
                    note = str(e)
            note = f"could not put the audio of '{audio_from}' into '{path}' ({note}); the video is written without it"
        write_atomic(path, lambda tmp: _check(_ffmpeg([*video, "-map", "0:v:0", *out_opts, "-f", "mp4", tmp])))
        return note
    finally:
        if os.path.exists(listing):
            os.unlink(listing)


def _check(result: tuple[int, str]) -> None:
    code, log = result
    if code != 0:
        lines = [ln for ln in log.splitlines() if ln.strip()]
        known = ffmpeg_os_error(log)
        if known is not None:
            raise known  # write_atomic names the file and the fix
        raise OSError((lines[-1] if lines else f"ffmpeg exit code {code}")[:160])


def video_frame(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A video frame (RGB, ``size`` (H, W)) of a picture; an RGBA one over white."""
    import cv2

    if img.shape[2] == 4:
        a = img[:, :, 3:].astype(np.float32) / 255
        img = (img[:, :, :3] * a + 255 * (1 - a)).round().astype(np.uint8)
    shrink = img.shape[0] > size[0]
    return cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
