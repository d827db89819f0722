"""Every default of a render, once: a frozen dataclass the CLI and the API both build."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from .errors import InputError

OPTIMIZERS = ("rmsprop", "sgd", "adam", "gd", "lbfgs")
PARAMS = ("pixel", "fft")


@dataclass(frozen=True)
class RenderConfig:
    """Settings of the multiscale tiled optimization. Units: pixels for sizes, [0, 1] for colours.

    Sizes (cnn-vis semantics; base = the init image's size, or the model input for noise):
        initial_size, final_size: ``"xF"`` or ``"HxW"``; num_sizes; size_spacing geometric|linear.
        octaves, octave_scale: the octave form instead (``octaves`` sizes ending at final_size).
    Steps: steps per size.
    Tiling: tile side (None = model input size), overlap (None = tile // 4), batch_size tiles
        per forward pass, shift (a new random tile-grid offset every step), jitter (random
        roll of each tile's content by up to this many pixels).
    Init: init_scale (std of Gaussian noise around the model mean colour), init_blur (sigma, px).
    Parameterization: param pixel | fft (decorrelated Fourier image, see :mod:`cnnvis.param`),
        fft_decay (the spectrum's 1/f**power).
    Transforms (robustness, per batch of tiles): jitter, transform_scale (random zoom by up to
        this fraction), transform_rotate (random rotation up to this many degrees).
    Optimizer: rmsprop | sgd | adam | gd (icnn's gradient descent with momentum:
        ``delta = momentum * delta + lr * g``) | lbfgs (one L-BFGS iteration per step, the
        closure re-runs every tile). lr (pixel units per step), lr_end (linear schedule from lr
        to lr_end over each size's steps, icnn's lr_start/lr_end); decay_rate (RMSProp's alpha);
        momentum -> momentum_end (sgd, gd); lr_decay_every / lr_decay_factor; normalize_grad
        divides the objective's gradient by its mean |g| each step (Google's deepdream, icnn),
        so regularizer weights mean the same for every model and layer (ignored by lbfgs,
        whose line search needs the true gradient); lbfgs_history; latent_lr: the learning
        rate at the sizes that optimize a DGN prior's latent (latent units; None = lr; the lr
        schedule scales it alike).
    Pixel operations after each step (pixel param only; icnn, after Yosinski et al. 2015):
        pixel_decay -> pixel_decay_end pulls pixels toward the model mean by that fraction;
        clamp_pixels keeps them in [0, 1]; clip_extreme (percentile of extreme values clipped),
        clip_small_norm (percentile of pixels with the smallest colour norm reset to the mean)
        and clip_small_contrib (percentile with the smallest |pixel x gradient| reset), each with
        an ``_end`` value for a linear schedule and an ``_every`` period.
    Regularizers: TV (tv_weight, tv_beta, tv_operator, tv_scale, stepped by tv_step every
        tv_step_every steps), p-norm (p_weight, p_alpha, p_scale, p_target zero|init|auto),
        auxiliary p-norm toward zero (aux_*), Gaussian blur (blur_sigma -> blur_sigma_end every
        blur_every steps).
    Output: clip | rescale.
    """

    initial_size: str | None = None
    final_size: str | None = None
    num_sizes: int = 1
    size_spacing: str = "geometric"
    octaves: int | None = None
    octave_scale: float = 1.4
    steps: int = 20

    tile: int | None = None
    overlap: int | None = None
    batch_size: int = 4
    shift: bool = True
    jitter: int = 0
    transform_scale: float = 0.0
    transform_rotate: float = 0.0

    param: str = "pixel"
    fft_decay: float = 1.0

    init_scale: float = 0.1
    init_blur: float = 1.0

    optimizer: str = "rmsprop"
    lr: float = 0.01
    lr_end: float | None = None
    latent_lr: float | None = None
    decay_rate: float = 0.95
    momentum: float = 0.9
    momentum_end: float | None = None
    lbfgs_history: int = 100
    lr_decay_every: int = 0
    lr_decay_factor: float = 1.0
    normalize_grad: bool = True

    tv_weight: float = 0.05
    tv_beta: float = 2.0
    tv_operator: str = "naive"
    tv_scale: float = 1.0
    tv_step: float = 0.0
    tv_step_every: int = 50

    p_weight: float = 0.0
    p_alpha: float = 6.0
    p_scale: float = 0.5
    p_target: str = "auto"
    aux_p_weight: float = 0.0
    aux_p_alpha: float = 6.0
    aux_p_scale: float = 0.5

    blur_every: int = 0
    blur_sigma: float = 0.5
    blur_sigma_end: float | None = None

    pixel_decay: float = 0.0
    pixel_decay_end: float | None = None
    clamp_pixels: bool = False
    clip_extreme: float = 0.0
    clip_extreme_end: float | None = None
    clip_extreme_every: int = 4
    clip_small_norm: float = 0.0
    clip_small_norm_end: float | None = None
    clip_small_norm_every: int = 4
    clip_small_contrib: float = 0.0
    clip_small_contrib_end: float | None = None
    clip_small_contrib_every: int = 4

    output: str = "clip"
    seed: int = 0

    def __post_init__(self):
        _positive(self, "lr", "steps", "batch_size", "octave_scale", "tv_scale", "p_scale", "aux_p_scale", "num_sizes", "fft_decay", "lbfgs_history", "latent_lr")
        _finite_nonneg(self, "decay_rate", "momentum", "tv_weight", "tv_beta", "tv_step", "p_weight", "p_alpha", "aux_p_weight", "aux_p_alpha", "init_scale", "init_blur", "blur_sigma", "lr_decay_factor", "jitter",
                       "transform_scale", "transform_rotate", "pixel_decay", "clip_extreme", "clip_small_norm", "clip_small_contrib")
        for name in ("lr_end", "momentum_end", "blur_sigma_end", "pixel_decay_end", "clip_extreme_end", "clip_small_norm_end", "clip_small_contrib_end"):
            if getattr(self, name) is not None:
                _finite_nonneg(self, name)
        for name in ("pixel_decay", "pixel_decay_end"):
            v = getattr(self, name)
            if v is not None and v >= 1:
                raise InputError(f"{_flag(name)} must be in [0, 1) (a fraction pulled toward the mean per step), got {v}")
        for name in ("clip_extreme", "clip_extreme_end", "clip_small_norm", "clip_small_norm_end", "clip_small_contrib", "clip_small_contrib_end"):
            v = getattr(self, name)
            if v is not None and v > 100:
                raise InputError(f"{_flag(name)} is a percentile and must be in [0, 100], got {v}")
        if self.transform_scale >= 1:
            raise InputError(f"--transform-scale must be below 1 (a fraction of the tile), got {self.transform_scale}")
        if self.param not in PARAMS:
            raise InputError(f"unknown --param '{self.param}'; use one of {', '.join(PARAMS)}")
        if self.param != "pixel":
            for name in ("pixel_decay", "clip_extreme", "clip_small_norm", "clip_small_contrib", "blur_every"):
                if getattr(self, name):
                    raise InputError(f"{_flag(name)} edits pixels in place and needs --param pixel, not --param {self.param}")
        for name in ("lr_decay_every", "tv_step_every", "blur_every", "clip_extreme_every", "clip_small_norm_every", "clip_small_contrib_every"):
            if getattr(self, name) < 0:
                raise InputError(f"{_flag(name)} must be >= 0 (0 = off), got {getattr(self, name)}")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"unknown optimizer '{self.optimizer}'; use one of {', '.join(OPTIMIZERS)}")
        if self.p_target not in ("auto", "zero", "init"):
            raise InputError(f"unknown --p-target '{self.p_target}'; use auto, zero or init")
        if self.output not in ("clip", "rescale"):
            raise InputError(f"unknown output mode '{self.output}'; use clip or rescale")
        if self.tile is not None and self.tile < 1:
            raise InputError(f"--tile must be positive, got {self.tile}")
        if self.overlap is not None and self.overlap < 0:
            raise InputError(f"--overlap must be >= 0, got {self.overlap}")
        if not 0 <= self.decay_rate < 1:
            raise InputError(f"--decay-rate must be in [0, 1), got {self.decay_rate}")

    def scheduled(self, name: str, frac: float) -> float:
        """``name`` linearly scheduled to ``name_end`` at ``frac`` in [0, 1] of a size's steps."""
        start, end = getattr(self, name), getattr(self, name + "_end")
        return start if end is None else start + (end - start) * frac

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _positive(cfg, *names):
    for n in names:
        v = getattr(cfg, n)
        if v is None:
            continue
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise InputError(f"{_flag(n)} must be a positive finite number, got {v}")


def _finite_nonneg(cfg, *names):
    for n in names:
        v = getattr(cfg, n)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise InputError(f"{_flag(n)} must be a finite number >= 0, got {v}")
