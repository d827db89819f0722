"""Videos in and out one frame at a time: the reader, corrupt input, MP4 segments, PNG folders, GIFs, audio."""

from __future__ import annotations

import os
import subprocess

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import pytest
from conftest import pan_frames, write_clip

from cnnvis.errors import InputError
from cnnvis.io.segments import VideoOutput, check_output, output_kind
from cnnvis.io.video import CorruptVideoError, VideoReader, probe
from cnnvis.io.video_out import Mp4Writer, frame_name


def test_reader_streams_every_frame_with_rate_size_and_audio(tmp_path):
    frames = pan_frames(8)
    path = write_clip(tmp_path / "a.mp4", frames, fps=12, audio=True)
    info = probe(path)
    assert info.fps == 12 and info.size == (48, 64) and info.frames == 8 and info.audio == "aac"
    with VideoReader(path) as r:
        got = [f.copy() for f in r]
    assert len(got) == 8 and got[0].dtype == np.uint8 and got[0].shape == (48, 64, 3)
    assert np.abs(np.stack(got).astype(int) - frames).mean() < 10  # H.264 is lossy, but these are the frames
    gif = write_clip(tmp_path / "a.gif", frames)
    assert probe(gif).audio is None
    with VideoReader(gif) as r:
        assert np.array_equal(
            np.stack(list(r)), iio.imread(gif, index=None)[..., :3]
        )  # the same pixels as Pillow decodes


@pytest.mark.parametrize("n", [1, 2, 5])
def test_reader_gives_every_frame_once(tmp_path, n):
    """Not at ffmpeg's constant rate: a 2-frame GIF, whose nominal rate is 100 fps, came out as 20 frames."""
    frames = pan_frames(n)
    with VideoReader(write_clip(tmp_path / "s.gif", frames)) as r:
        assert len([f for f in r]) == n
    with VideoReader(write_clip(tmp_path / "s.mp4", frames)) as r:
        assert len([f for f in r]) == n


def test_reader_names_a_truncated_file_after_its_last_good_frame(tmp_path):
    frames = np.stack(
        [pan_frames(1, seed=s)[0] for s in range(20)]
    )  # unlike frames: every frame takes its share of the file
    path = write_clip(tmp_path / "t.mp4", frames, faststart=True)
    data = open(path, "rb").read()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 6 // 10])
    n = 0
    with pytest.raises(CorruptVideoError, match="corrupt or truncated after frame") as e, VideoReader(str(cut)) as r:
        for _ in r:
            n += 1
    assert 0 < n < 20 and e.value.frames == n


def test_probe_bad_input(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        probe(str(tmp_path / "none.mp4"))
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(InputError, match="cannot read video .*empty.mp4"):
        probe(str(tmp_path / "empty.mp4"))
    tone = tmp_path / "tone.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "sine", "-t", "0.5", str(tone)],
        check=True,
    )
    with pytest.raises(InputError, match="has no frames"):
        probe(str(tone))


def test_mp4_writer_is_atomic_and_keeps_the_frame_size(tmp_path):
    frames = pan_frames(4, h=33, w=49)  # odd sides: cropped to even
    w = Mp4Writer(str(tmp_path / "v.mp4"), 10)
    for f in frames:
        w.write(f)
    assert not (tmp_path / "v.mp4").exists()  # only a hidden temporary while it streams
    w.close()
    assert probe(str(tmp_path / "v.mp4")).size == (32, 48) and sorted(os.listdir(tmp_path)) == ["v.mp4"]
    w = Mp4Writer(str(tmp_path / "x.mp4"), 10)
    w.write(frames[0])
    w.abort()
    assert sorted(os.listdir(tmp_path)) == ["v.mp4"]


def _decode(path):
    with VideoReader(str(path)) as r:
        return np.stack([f.copy() for f in r])


def test_mp4_output_in_segments_resumes_and_joins_with_audio(tmp_path):
    src = write_clip(tmp_path / "src.mp4", pan_frames(9), audio=True)
    frames = _decode(src)
    out = str(tmp_path / "out.mp4")
    o = VideoOutput(out, 10)
    o.start()
    for i, f in enumerate(frames[:5]):
        o.write(f)
        if i == 2:
            o.cut()  # a checkpoint after frame 3
    where = o.salvage(src)  # Ctrl-C after frame 5
    assert where == str(tmp_path / "out.interrupted.mp4") and probe(where).frames == 5 and probe(where).audio == "aac"
    state = o.state()
    assert state == {"kind": "mp4", "frames": 5, "segments": ["seg_000000.mp4", "seg_000003.mp4"]}
    o2 = VideoOutput(out, 10)
    o2.start(state)
    for f in frames[5:]:
        o2.write(f)
    assert o2.finish(src) is None
    info = probe(out)
    assert info.frames == 9 and info.fps == 10 and info.audio == "aac"
    joined = _decode(out)
    assert np.array_equal(joined[:5], _decode(where))  # joined without re-encoding
    assert np.abs(joined.astype(int) - frames).mean() < 10
    assert not (tmp_path / "out.parts").exists()


def test_restore_drops_segments_written_after_the_checkpoint_and_needs_the_rest(tmp_path):
    frames = pan_frames(4)
    out = str(tmp_path / "o.mp4")
    o = VideoOutput(out, 10)
    o.start()
    o.write(frames[0])
    o.cut()
    state = o.state()
    o.write(frames[1])
    o.cut()  # a segment the checkpoint does not know (a crash before the next checkpoint)
    assert len(os.listdir(tmp_path / "o.parts")) == 2
    VideoOutput(out, 10).start(state)
    assert os.listdir(tmp_path / "o.parts") == ["seg_000000.mp4"]
    os.unlink(tmp_path / "o.parts" / "seg_000000.mp4")
    with pytest.raises(InputError, match="is missing, so it cannot go on"):
        VideoOutput(out, 10).start(state)


def test_png_folder_and_gif_outputs(tmp_path):
    frames = pan_frames(3)
    folder = tmp_path / "frames"
    o = VideoOutput(str(folder) + "/", 10)
    o.start()
    for f in frames:
        o.write(f)
    o.finish()
    assert (
        sorted(os.listdir(folder))
        == [frame_name(i) for i in range(3)]
        == ["frame_000001.png", "frame_000002.png", "frame_000003.png"]
    )
    assert np.array_equal(iio.imread(folder / "frame_000002.png"), frames[1])  # lossless
    with pytest.raises(InputError, match="already holds frame_"):
        VideoOutput(str(folder) + "/", 10).start()
    o = VideoOutput(str(tmp_path / "g.gif"), 5)
    o.start()
    for f in frames:
        o.write(f)
    o.finish()
    assert iio.imread(tmp_path / "g.gif", index=None).shape[0] == 3 and not (tmp_path / "g.parts").exists()


def test_output_kinds(tmp_path):
    assert output_kind("a.mp4") == "mp4" and output_kind("a.GIF") == "gif" and output_kind("frames/") == "frames"
    assert output_kind(str(tmp_path)) == "frames"
    with pytest.raises(InputError, match="cannot write a video to 'a.avi'"):
        output_kind("a.avi")
    with pytest.raises(InputError, match="does not exist"):
        check_output(str(tmp_path / "no" / "a.mp4"))


def _six_frame_gif(tmp_path):
    frames = np.stack([pan_frames(1, seed=s)[0] for s in range(6)])  # unlike frames: each takes its share of the file
    path = write_clip(tmp_path / "six.gif", frames)
    return path, iio.imread(path, index=None)[..., :3]  # the frames as the intact file decodes


@pytest.mark.parametrize("keep", [0.3, 0.5, 0.8])
def test_reader_stops_a_truncated_gif_after_its_last_whole_frame(tmp_path, keep):
    """ffmpeg ends a cut GIF with exit code 0 after a half-decoded frame: the reader gives only the
    whole frames, then CorruptVideoError with their count (what the frame loop reports as kept)."""
    path, want = _six_frame_gif(tmp_path)
    data = open(path, "rb").read()
    cut = tmp_path / "cut.gif"
    cut.write_bytes(data[: int(len(data) * keep)])
    got = []
    with pytest.raises(CorruptVideoError, match="truncated after frame") as e, VideoReader(str(cut)) as r:
        for f in r:
            got.append(f.copy())
    assert e.value.frames == len(got) and 0 < len(got) < 6
    assert len(got) >= int(6 * keep) - 1  # the whole frames before the cut are all kept
    for i, f in enumerate(got):
        assert np.array_equal(f, want[i]), f"frame {i} is not the original"


def test_reader_gives_every_frame_of_an_intact_gif_and_of_one_without_its_trailer(tmp_path):
    path, want = _six_frame_gif(tmp_path)
    with VideoReader(path) as r:
        assert np.array_equal(np.stack([f.copy() for f in r]), want)
    data = open(path, "rb").read()
    assert data[-1:] == b";"
    bare = tmp_path / "no_trailer.gif"
    bare.write_bytes(data[:-1])  # every frame whole, only the end marker missing: nothing is lost
    with VideoReader(str(bare)) as r:
        assert np.array_equal(np.stack([f.copy() for f in r]), want)
