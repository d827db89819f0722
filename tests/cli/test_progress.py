"""The notebook progress callback: one tqdm.auto bar over a real render's steps."""

from __future__ import annotations

import io

from cnnvis.canvas.start import Start
from cnnvis.cli.progress import ProgressBar
from cnnvis.config import RenderConfig
from cnnvis.objectives.activation import Dream
from cnnvis.pipeline.loop import Render


def test_progress_bar_counts_every_step_and_closes(tiny_model):
    seen = []
    stream = io.StringIO()
    cb = ProgressBar("dream", then=seen.append, file=stream, mininterval=0)
    Render(
        tiny_model, Dream("conv3"), RenderConfig(steps=3, tile=32, octaves=2, final_size="40x40"), Start(size=(32, 32))
    ).run(cb)
    assert [p.step for p in seen] == [1, 2, 3, 4, 5, 6] and cb.bar is None
    text = stream.getvalue()
    assert "dream" in text and "6/6" in text and "40x40" in text
