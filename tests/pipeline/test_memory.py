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
    assert (
        canvas_buffers(RenderConfig(optimizer="lbfgs", lbfgs_history=100, steps=10)) > adam + 10
    )  # history grows with steps
    assert canvas_buffers(RenderConfig(param="fft", optimizer="adam")) > adam
    assert canvas_buffers(RenderConfig(), references=2) == rms + 2


@pytest.mark.parametrize(
    "kw,buffers",
    [
        # canvas, gradient, resized copy, optimizer state, the kind's own, the p-norm's init image
        ({}, 3 + 1 + 0 + 1),
        ({"optimizer": "sgd"}, 3 + 1 + 0 + 1),
        ({"optimizer": "gd"}, 3 + 1 + 0 + 1),
        ({"optimizer": "adam"}, 3 + 2 + 0 + 1),
        ({"optimizer": "lbfgs", "lbfgs_history": 100, "steps": 10}, 3 + 24 + 0 + 1),
        ({"optimizer": "lbfgs", "lbfgs_history": 5, "steps": 10}, 3 + 14 + 0 + 1),
        ({"param": "fft"}, 3 + 1 + 5 + 1),
        ({"param": "fft", "decorrelate": True}, 3 + 1 + 5 + 1),
        ({"decorrelate": True}, 3 + 1 + 2 + 1),
        ({"param": "lowres"}, 3 + 1 + 0 + 1),
        ({"param": "lowres", "decorrelate": True}, 3 + 1 + 2 + 1),
        ({"param": "cppn"}, 3 + 1 + 0 + 1),
    ],
)
def test_each_kind_declares_its_buffers(kw, buffers):
    assert canvas_buffers(RenderConfig(**kw)) == buffers


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


def test_the_cpu_reading_and_the_usable_fraction_are_the_image_readers():
    """One MemAvailable reading and one fraction for the run's pre-flight and the image reader's
    (cnnvis.io may not import the pipeline, so both live in cnnvis.io.images)."""
    from cnnvis.io import images
    from cnnvis.pipeline import memory

    assert memory.USABLE is images.USABLE and 0 < memory.USABLE < 1
    free, io_free = available_bytes(CPU), images.cpu_available_bytes()
    assert free is not None and io_free is not None and abs(free - io_free) < 0.25 * io_free  # read moments apart
    need = preflight((100, 100), 1, RenderConfig(), CPU, available=1 << 40)
    preflight((100, 100), 1, RenderConfig(), CPU, available=int(need / images.USABLE) + 1)
    with pytest.raises(InputError):
        preflight((100, 100), 1, RenderConfig(), CPU, available=int(need / images.USABLE) - 1)
