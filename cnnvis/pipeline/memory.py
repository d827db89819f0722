"""The memory pre-flight: estimate a run's canvas-sized buffers before allocating any.

A tile batch's activations are bounded by ``--tile`` and ``--batch-size``; what grows with the
requested size is the set of canvas-sized float32 buffers (N, C, H, W), C = 3 or 4 (RGBA): the
canvas, the gradient, the optimizer's per-pixel state, the parameterization's own, the
references and the p-norm's init image, and during a change of size the resized copies. The
optimizer's table entry (:class:`cnnvis.params.optim.OptimizerKind`) and the parameterization's
class (:meth:`cnnvis.params.base.Param.canvas_buffers`) say how many they hold. A size too large
for the machine then fails with one line naming the estimate, the memory available and the
largest size that fits, instead of an allocator traceback minutes later.
"""

from __future__ import annotations

import math

import torch

from cnnvis.canvas.sizes import Size
from cnnvis.errors import InputError
from cnnvis.io.images import USABLE, cpu_available_bytes
from cnnvis.params import kind_of
from cnnvis.params.color import channels
from cnnvis.params.optim import optimizer_kind

FLOAT_BYTES = 4
# USABLE (imported above, shared with the image reader's check): the fraction of the available
# memory a run may plan to use; the rest is for the model, a tile batch's activations and the
# allocator's slack.


def optimizer_buffers(cfg) -> float:
    """Canvas-sized buffers of ``cfg.optimizer``'s state (its table entry says)."""
    return optimizer_kind(cfg.optimizer).buffers(cfg)


def param_buffers(cfg) -> float:
    """Canvas-sized buffers ``cfg.param``'s parameterization holds beyond the canvas (its class says)."""
    return kind_of(cfg).canvas_buffers(cfg)


def canvas_buffers(cfg, references: int = 0) -> float:
    """Canvas-sized float32 buffers a run of ``cfg`` holds at once at its largest size."""
    n = 2 + 1  # canvas, gradient, and the resized copy made between sizes
    n += optimizer_buffers(cfg)
    n += param_buffers(cfg)
    n += references + 1  # references, and the init image the p-norm may pull toward
    return n


def available_bytes(device: torch.device) -> int | None:
    """Free memory on ``device`` in bytes (MemAvailable on the CPU), or None if unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    return cpu_available_bytes()


def preflight(
    size: Size,
    batch: int,
    cfg,
    device: torch.device,
    references: int = 0,
    available: int | None = None,
    buffers: float | None = None,
) -> int:
    """Raise :class:`InputError` when the canvas-sized buffers of ``batch`` images of ``size``
    cannot fit in ``available`` bytes (default: what the device has free). ``buffers``: how many
    (default: :func:`canvas_buffers`, an optimized size's). Returns the estimate."""
    h, w = size
    buffers = canvas_buffers(cfg, references) if buffers is None else buffers
    need = int(buffers * batch * channels(cfg) * h * w * FLOAT_BYTES)
    free = available_bytes(device) if available is None else available
    if free is None or need <= USABLE * free:
        return need
    s = math.sqrt(USABLE * free / need)
    fit_h, fit_w = max(1, int(h * s)), max(1, int(w * s))
    images = f" x {batch} images" if batch > 1 else ""
    raise InputError(
        f"a {h}x{w} canvas{images} needs about {need / 1e9:.1f} GB for its {buffers:g} canvas-sized buffers, "
        f"but {free / 1e9:.1f} GB of memory is available on {device.type}; "
        f"the largest size that fits is about {fit_h}x{fit_w}: lower --final-size"
    )
