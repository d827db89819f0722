"""The memory pre-flight: estimate a run's canvas-sized buffers before allocating any.

A tile batch's activations are bounded by ``--tile`` and ``--batch-size``; what grows with the
requested size is the set of canvas-sized float32 buffers (N, C, H, W), C = 3 or 4 (RGBA): the canvas, the
gradient, the optimizer's per-pixel state, the references and the p-norm's init image, and
during a change of size the resized copies. A size too large for the machine then fails with
one line naming the estimate, the memory available and the largest size that fits, instead of
an allocator traceback minutes later.
"""

from __future__ import annotations

import math

import torch

from cnnvis.canvas.sizes import Size
from cnnvis.errors import InputError
from cnnvis.io.images import USABLE, cpu_available_bytes
from cnnvis.params.color import channels

FLOAT_BYTES = 4
# Per-pixel optimizer state, in canvas-sized buffers (L-BFGS: see optimizer_buffers).
OPTIMIZER_BUFFERS = {"rmsprop": 1, "sgd": 1, "gd": 1, "adam": 2}
# The Fourier image keeps its spectrum plus the irfft / colour / sigmoid intermediates of the
# graph it draws through (about four canvases).
FOURIER_BUFFERS = 5
# The decorrelated pixel canvas also keeps its RGB image and the gradient in its own space.
DECORRELATED_BUFFERS = 2
# USABLE (imported above, shared with the image reader's check): the fraction of the available
# memory a run may plan to use; the rest is for the model, a tile batch's activations and the
# allocator's slack.


def optimizer_buffers(optimizer: str, lbfgs_history: int, steps: int) -> float:
    """Canvas-sized buffers of optimizer state. L-BFGS keeps two vectors per curvature pair (at
    most one pair per step) plus its direction, previous gradient and line-search copies."""
    if optimizer == "lbfgs":
        return 2 * min(lbfgs_history, steps) + 4
    return OPTIMIZER_BUFFERS.get(optimizer, 2)


def canvas_buffers(cfg, references: int = 0) -> float:
    """Canvas-sized float32 buffers a run of ``cfg`` holds at once at its largest size."""
    n = 2 + 1  # canvas, gradient, and the resized copy made between sizes
    n += optimizer_buffers(cfg.optimizer, cfg.lbfgs_history, cfg.steps)
    if cfg.param == "fft":
        n += FOURIER_BUFFERS
    elif cfg.param in ("pixel", "lowres") and cfg.decorrelate:
        n += DECORRELATED_BUFFERS
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
        f"a {h}x{w} canvas{images} needs about {need / 1e9:.1f} GB for its {buffers:g} canvas-sized buffers, but {free / 1e9:.1f} GB "
        f"of memory is available on {device.type}; the largest size that fits is about {fit_h}x{fit_w}: lower --final-size"
    )
