"""The memory pre-flight: an estimate of the canvas-sized buffers, checked before allocation."""

from __future__ import annotations

import pytest
import torch

from cnnvis.config import RenderConfig
from cnnvis.errors import InputError
from cnnvis.pipeline.memory import available_bytes, canvas_buffers, preflight

CPU = torch.device("cpu")


def test_estimate_counts_the_buffers_of_each_optimizer():
    rms, adam = canvas_buffers(RenderConfig()), canvas_buffers(RenderConfig(optimizer="adam"))
    assert adam == rms + 1
    assert canvas_buffers(RenderConfig(optimizer="lbfgs", lbfgs_history=100, steps=10)) > adam + 10  # history grows with steps
    assert canvas_buffers(RenderConfig(param="fft", optimizer="adam")) > adam
    assert canvas_buffers(RenderConfig(), references=2) == rms + 2


def test_estimate_is_bytes_of_float32_images():
    need = preflight((100, 200), 3, RenderConfig(), CPU, available=1 << 40)
    assert need == canvas_buffers(RenderConfig()) * 3 * 3 * 100 * 200 * 4


def test_too_large_names_estimate_available_and_the_size_that_fits():
    with pytest.raises(InputError) as e:
        preflight((4000, 6000), 1, RenderConfig(), CPU, available=1 << 30)
    msg = str(e.value)
    assert "4000x6000" in msg and "1.1 GB" in msg and "--final-size" in msg
    h, w = (int(v) for v in msg.split("fits is about ")[1].split(":")[0].split("x"))
    # the suggested size fits, and is the largest that does (to a pixel or two)
    preflight((h, w), 1, RenderConfig(), CPU, available=1 << 30)
    with pytest.raises(InputError):
        preflight((h + 40, w + 60), 1, RenderConfig(), CPU, available=1 << 30)
    assert abs(w / h - 1.5) < 0.01  # the aspect ratio is kept


def test_available_memory_is_known_on_this_machine():
    free = available_bytes(CPU)
    assert free is not None and free > 1 << 20
