"""Preferred images of many units of a layer, rendered in batches: the atlas's unit of work.

Every unit gets a seed derived from the run's seed, the layer and the unit
(:func:`unit_seed`), and its noise start draws from it alone, so its image does not depend on
which worker renders it or which batch it shares. With the same batch composition and thread
count it is bit-identical on CPU; across batch sizes the float summation order of the batched
network differs, so the images differ in their last bits (bench/RESULTS.md measures how much).

The library plans (:mod:`cnnvis.recipes.atlas_plan`), renders (here: in-process, or on Ray:
:mod:`cnnvis.recipes.atlas_ray`) and builds what the directory holds
(:mod:`cnnvis.recipes.atlas_record`, :mod:`cnnvis.recipes.atlas_page`); the CLI (``cnnvis
atlas``) draws the progress and writes the files.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from cnnvis.defaults import UNIT_KINDS
from cnnvis.errors import InputError
from cnnvis.priors.spec import PriorSpec


def unit_seed(seed: int, layer: str, unit: int) -> int:
    """A seed for one unit, a pure function of (run seed, layer, unit): 63 bits of SHA-256."""
    digest = hashlib.sha256(f"cnnvis-unit/{seed}/{layer}/{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def unit_feature_mask(shape: Sequence[int], unit: int, kind: str) -> np.ndarray:
    """The feature mask (the layer's activation shape without batch) of one unit: the whole
    channel ``unit`` (``channel``), or its centre position (``neuron``; a fully connected layer's
    unit either way)."""
    if kind not in UNIT_KINDS:
        raise InputError(f"unknown unit kind '{kind}'; use channel or neuron")
    shape = tuple(shape)
    if not 0 <= unit < shape[0]:
        raise InputError(f"unit {unit} is outside a layer with {shape[0]} units; use 0..{shape[0] - 1}")
    if kind == "channel" or len(shape) == 1:
        mask = np.zeros(shape[:1], np.float32)
        mask[unit] = 1
        return mask
    mask = np.zeros(shape, np.float32)
    mask[(unit, shape[1] // 2, shape[2] // 2) + (0,) * (len(shape) - 3)] = 1
    return mask


@dataclass
class UnitImages:
    """One rendered batch: ``images`` (N, 3, H, W) float in [0, 1] (clipped), the activation
    each unit reached on its final image (channel: mean over positions; neuron: its value), and
    the seconds the batch took."""

    units: list[int]
    images: torch.Tensor
    activations: list[float]
    seconds: float


def activations_reached(model, layer: str, images: torch.Tensor, units: Sequence[int], kind: str) -> list[float]:
    """Each unit's activation on its own image (N, 3, H, W), with no transform."""
    with model.capture([layer]) as cap, torch.no_grad():
        a = cap(model.normalize(images.to(next(iter(model.module.parameters()), images).device)))[layer]
    out = []
    for i, u in enumerate(units):
        v = a[i, u]
        if kind == "neuron" and v.dim() >= 2:
            v = v[v.shape[0] // 2, v.shape[1] // 2]
        out.append(float(v.float().mean()))
    return out


def render_units(
    model,
    layer: str,
    units: Sequence[int],
    kind: str = "channel",
    *,
    size: tuple[int, int] | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    prior=None,
    callback: Callable | None = None,
    **options,
) -> UnitImages:
    """Render the preferred images of ``units`` of ``layer`` as one batch.

    Args:
        model: a :class:`cnnvis.models.registry.LoadedModel`.
        layer: the dotted layer name (resolve pre/post activation first, see
            :func:`cnnvis.models.capture.resolve_layer`).
        units: channel numbers; each becomes one image of the batch.
        kind: ``channel`` (the whole channel) or ``neuron`` (its centre unit).
        size: (H, W) of the images; default the model input.
        seed: the run's seed; unit u's start draws from :func:`unit_seed` (seed, layer, u).
        **options: render settings over the preferred-image defaults (see
            :func:`cnnvis.recipes.recon.generate_image`).
    """
    from cnnvis.recipes.recon import layer_shape, prefer_render

    size = tuple(size) if size else (model.input_size, model.input_size)
    shape = layer_shape(model, layer, size)
    masks = [unit_feature_mask(shape, u, kind) for u in units]
    options = dict(options)
    options.setdefault("batch_size", len(units))  # one tile per image: the whole batch in one forward pass
    started = time.perf_counter()
    r = prefer_render(
        model,
        layer,
        masks,
        size=size,
        device=device,
        prior=prior,
        seed=seed,
        item_seeds=[unit_seed(seed, layer, u) for u in units],
        **options,
    )
    images = r.run(callback).clamp(0, 1)
    acts = activations_reached(model, layer, images, units, kind)
    return UnitImages(list(units), images.cpu(), acts, time.perf_counter() - started)


class UnitWorker:
    """Renders batches of units with one loaded model: in-process (:func:`render_batches`), or as
    the body of a Ray actor (see :meth:`load`, which :mod:`cnnvis.recipes.atlas_ray` wraps with
    ``ray.remote``).

    Args:
        model: a :class:`cnnvis.models.registry.LoadedModel`.
        device: where to render.
    """

    def __init__(self, model, device: str | torch.device = "cpu"):
        self.model, self.device = model, torch.device(device)

    @classmethod
    def load(
        cls, model: str, weights: str | None = None, device: str = "cpu", threads: int | None = None
    ) -> UnitWorker:
        """A worker that loads ``model`` (a :func:`cnnvis.models.registry.load_model` spec) once,
        with ``threads`` torch intra-op threads (workers x threads should fit the cores)."""
        from cnnvis.models.registry import load_model
        from cnnvis.pipeline.device import pick_device

        if threads:
            torch.set_num_threads(int(threads))
        dev = pick_device(device)
        return cls(load_model(model, weights, dev), dev)

    def pid(self) -> int:
        import os

        return os.getpid()

    def render(
        self,
        layer: str,
        units: Sequence[int],
        kind: str,
        size: tuple[int, int],
        seed: int,
        options: dict,
        prior: PriorSpec | None = None,
    ) -> dict:
        """One batch -> ``{"units", "images": uint8 (N, H, W, 3), "activations", "seconds"}``
        (small, plain values: what travels back to the driver). ``prior``: the generator prior's
        spec (None or its default: pixels)."""
        from cnnvis.priors.dgn import prior_of

        dgn = prior_of(prior or PriorSpec(), self.model, self.device)
        res = render_units(
            self.model, layer, units, kind, size=size, seed=seed, device=self.device, prior=dgn, **options
        )
        images = (res.images.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()
        return {"units": res.units, "images": images, "activations": res.activations, "seconds": res.seconds}


def render_batches(
    worker: UnitWorker, plan, work: Sequence, on_result: Callable, stop: Callable[[], bool] = lambda: False
) -> None:
    """Render ``work`` (a list of (layer plan, units), :func:`cnnvis.recipes.atlas_plan.batches`)
    of ``plan`` (an :class:`cnnvis.recipes.atlas_plan.AtlasPlan`) one batch after another in this
    process, calling ``on_result(layer plan, result)`` after each; ``stop()`` true: render no more.
    The in-process twin of :meth:`cnnvis.recipes.atlas_ray.RaySession.render`."""
    for lp, chunk in work:
        if stop():
            break
        on_result(lp, worker.render(lp.hook, chunk, plan.kind, plan.size, plan.seed, plan.options, plan.prior))
