"""What a rendering command writes besides its result: periodic saves, checkpoints, a progress
video, the JPEG quality and the progress bar. Declared once; the CLI generates its flags from it
and does the writing (the library never writes files on its own)."""

from __future__ import annotations

from cnnvis.config import Options, group, setting
from cnnvis.defaults import JPEG_QUALITY


@group("outputs")
class OutputOptions(Options):
    """The outputs of one rendering command beside ``--out``."""

    checkpoint_every: int = setting(
        0,
        "Write NAME.ckpt every N steps, every N frames for a video input (0 = only on Ctrl-C); "
        "finish it with cnnvis resume.",
        low=0,
        note="0 = only on Ctrl-C",
    )
    jpeg_quality: int = setting(JPEG_QUALITY, "Quality of .jpg outputs.", low=1, high=100)
    save_every: int = setting(0, "Also write NAME_SIZE_STEP.EXT every N steps (0 = never).", low=0, note="0 = never")
    video: str | None = setting(None, "Write the progress as a .gif or .mp4.")
    video_every: int = setting(1, "Steps between video frames.", low=1)
    quiet: bool = setting(False, "No progress bar.", short="-q")
