"""Train a generator that inverts one layer of any model (Dosovitskiy & Brox 2016, DeePSiM).

Loss per batch of augmented crops ``y`` with features ``x = E(y)`` at the inverted layer::

    pixel_weight   * mean (G(x) - y)^2                                  (image space)
  + feature_weight * sum_l mean (C_l(G(x)) - C_l(y))^2 / mean C_l(y)^2  (comparator layers)
  + adv_weight     * BCE(D(G(x)), real)                                 (optional adversary)
  + grid_weight    * mean_p (e_p(G(x)) - 1)^2                           (seams at the stride)
  + lattice_weight * mean_p max(0, log r_p(G(x)))^2                     (a checkerboard)

``e_p`` is the output's second-difference energy at phase ``p`` modulo the layer's stride over
its mean (cnnvis/canvas/stride_grid.py). Each ``stride`` x ``stride`` block is drawn from its
own latent cell, so a generator trained on pixels and features alone leaves seams where the
blocks meet (grid ratios 1.4-4.7 on unseen photos, cnnvis/data/README.md); the pixel loss
barely sees them (they are small second differences), while this term flattens exactly the
profile that ``bench/dgn.py`` measures. Photos' own profiles are flat (1.07 pooled).

``r_p`` is the output's spectral power at ``1 / p`` cycles per pixel over its neighbouring
frequencies, for p = 2, 4, 8, 16 (:func:`cnnvis.canvas.stride_grid.lattice_profile`). Transposed
convolutions add a faint checkerboard at each stage's period (Odena et al. 2016, "Deconvolution
and Checkerboard Artifacts"): too faint for the pixel loss or the seam term, but a sharp peak in
the spectrum (7-41x on the first demo generator's decodes; photos score about 1), which an
optimization through the generator then amplifies.

The encoder ``E`` and comparator ``C`` are the same frozen model: DeePSiM compares in AlexNet's
feature space; here the model being visualized is the natural comparator, and normalizing each
layer's error by its target's energy makes the weights independent of the layer's scale. The
discriminator is a small patch classifier on the image (DeePSiM's also sees the features; the
image-only form is the one that trains stably at the batch sizes a CPU allows).

The library never writes files: :meth:`GeneratorTrainer.checkpoint` returns a dict the caller
saves, and :meth:`GeneratorTrainer.from_checkpoint` resumes from it exactly (weights, both
optimizers, step, and the random state that draws crops).

The settings, :class:`TrainConfig`, are declared in :mod:`cnnvis.priors.train_config` (no torch,
so that ``--help`` lists them); they are importable from here too.

Randomness: kornia's augmentations draw from torch's global generator, so the trainer seeds it
(``seed``) and saves/restores its state in checkpoints.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from cnnvis.canvas.stride_grid import lattice_profile, phase_profile
from cnnvis.errors import InputError
from cnnvis.models.registry import LoadedModel
from cnnvis.priors.generators.files import GeneratorFile
from cnnvis.priors.generators.upconv import UpconvGenerator
from cnnvis.priors.train_config import TrainConfig

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class TrainProgress:
    """One finished step: ``step`` counts from 1; ``losses`` maps term name -> value."""

    step: int
    total: int
    losses: dict
    trainer: GeneratorTrainer


def load_image_folder(folder: str) -> list[torch.Tensor]:
    """Every image file in ``folder`` (not recursive) as (3, H, W) float RGB in [0, 1]."""
    from cnnvis.io.images import hwc_to_bchw, read_image

    if not os.path.isdir(folder):
        raise InputError(f"image folder not found: '{folder}'; pass a folder of .jpg/.png photos to --images")
    paths = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        raise InputError(f"no images in '{folder}'; put .jpg or .png photos there")
    return [hwc_to_bchw(read_image(p))[0] for p in paths]


class Discriminator(nn.Module):
    """A patch classifier: (B, 3, H, W) in [0, 1] -> (B, 1, H/8, W/8) real/fake logits."""

    def __init__(self, width: int = 32):
        super().__init__()
        layers, c = [], 3
        for out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c = out
        layers.append(nn.Conv2d(c, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)


def layer_geometry(model: LoadedModel, layer: str, device) -> tuple[int, int, tuple[int, int]]:
    """(channels, stride, (h, w) at the model's input size) of a spatial layer's output."""
    s = model.input_size
    with model.capture([layer]) as cap, torch.no_grad():
        f = cap(model.normalize(torch.full((1, 3, s, s), 0.5, device=device)))[layer]
    if f.dim() != 4:
        raise InputError(
            f"layer '{layer}' gives {tuple(f.shape)} features; train-generator inverts spatial layers (B, C, h, w): "
            "pick a convolutional layer"
        )
    stride = s / f.shape[-1]
    k = round(math.log2(stride)) if stride >= 1 else -1
    if k < 1 or abs(stride - 2**k) > 0.1 * stride or k > 6:
        raise InputError(
            f"layer '{layer}' has stride {stride:.1f} at {s} px; "
            "train-generator needs a power-of-two stride from 2 to 64: pick a layer after a downsampling stage"
        )
    return f.shape[1], 2**k, (f.shape[2], f.shape[3])


class GeneratorTrainer:
    """Trains an :class:`UpconvGenerator` for ``model``'s ``layer`` on ``images``.

    Args:
        model: the frozen network (encoder and comparator).
        layer: the inverted layer (dotted name); its output must be (B, C, h, w).
        images: list of (3, H, W) RGB tensors in [0, 1], each at least 32 px.
        cfg: settings.
        device: where training runs.
    """

    def __init__(
        self,
        model: LoadedModel,
        layer: str,
        images: list[torch.Tensor],
        cfg: TrainConfig,
        device: torch.device | str = "cpu",
    ):
        import kornia.augmentation as K

        self.model, self.layer, self.cfg = model, layer, cfg
        self.device = torch.device(device)
        self.images = [im.to(self.device) for im in images]
        if not self.images:
            raise InputError("no training images; pass a folder of photos to --images")
        if model.fixed_size and cfg.size != model.input_size:
            raise InputError(
                f"--size {cfg.size}: {model.name} takes only {model.input_size}x{model.input_size} input; "
                f"use --size {model.input_size}"
            )
        self.comparators = list(cfg.feature_layers) or [layer]
        self.capture = model.capture([layer] + [c for c in self.comparators if c != layer])
        channels, stride, hw = layer_geometry(model, layer, self.device)
        if cfg.size % stride:
            raise InputError(
                f"--size {cfg.size} is not a multiple of layer '{layer}''s stride {stride}; "
                f"use e.g. --size {max(1, round(cfg.size / stride)) * stride}"
            )
        torch.manual_seed(cfg.seed)
        self.generator = UpconvGenerator(channels, stride, hw, width=cfg.width, upsample=cfg.upsample).to(self.device)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
        self.disc = Discriminator().to(self.device) if cfg.adv_weight > 0 else None
        self.opt_d = (
            torch.optim.Adam(self.disc.parameters(), lr=cfg.lr, betas=(0.5, 0.999)) if self.disc is not None else None
        )
        # icnn-style latent bounds: running per-channel moments of the encoder's features
        self._sum = torch.zeros(channels, dtype=torch.float64)
        self._sq = torch.zeros(channels, dtype=torch.float64)
        self._count = 0
        self.step = 0
        # Horizontal flips and mild colour changes multiply a few photos into many; the crops'
        # random scale is what teaches the generator objects at many sizes.
        self.augment = nn.Sequential(
            K.RandomResizedCrop((cfg.size, cfg.size), scale=(cfg.scale_min, 1.0)),
            K.RandomHorizontalFlip(),
            K.ColorJitter(0.2, 0.2, 0.2, 0.02, p=0.5),
        )

    # ------------------------------------------------------------------ data
    def batch(self) -> torch.Tensor:
        """(batch_size, 3, size, size) augmented crops in [0, 1]."""
        idx = torch.randint(0, len(self.images), (self.cfg.batch_size,))
        return torch.cat([self.augment(self.images[i][None]) for i in idx.tolist()]).clamp_(0, 1)

    def _features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.capture(self.model.normalize(x))

    # ------------------------------------------------------------------ loop
    def train_step(self) -> dict:
        """One step on a fresh batch; returns the loss terms (floats)."""
        cfg = self.cfg
        y = self.batch()
        with torch.no_grad():
            ft = self._features(y)
        z = ft[self.layer]
        zc = z.double().transpose(0, 1).flatten(1).cpu()
        self._sum += zc.sum(1)
        self._sq += (zc * zc).sum(1)
        self._count += zc.shape[1]
        out = self.generator(z)
        losses = {"pixel": F.mse_loss(out, y)}
        fg = self._features(out)
        feat = sum(F.mse_loss(fg[c], ft[c]) / (ft[c].pow(2).mean() + 1e-8) for c in self.comparators) / len(
            self.comparators
        )
        losses["feature"] = feat
        total = cfg.pixel_weight * losses["pixel"] + cfg.feature_weight * feat
        if cfg.grid_weight > 0:
            losses["grid"] = (phase_profile(out, self.generator.stride) - 1).pow(2).mean()
            total = total + cfg.grid_weight * losses["grid"]
        if cfg.lattice_weight > 0:
            losses["lattice"] = lattice_profile(out).clamp_min(1).log().pow(2).mean()
            total = total + cfg.lattice_weight * losses["lattice"]
        if self.disc is not None:
            logits = self.disc(out.clamp(0, 1))
            losses["adv"] = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
            total = total + cfg.adv_weight * losses["adv"]
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        self.opt_g.step()
        if self.disc is not None:
            real, fake = self.disc(y), self.disc(out.detach().clamp(0, 1))
            d_loss = F.binary_cross_entropy_with_logits(
                real, torch.ones_like(real)
            ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            losses["disc"] = d_loss
        self.step += 1
        return {k: float(v.detach()) for k, v in losses.items()}

    def run(
        self, callback: Callable[[TrainProgress], None] | None = None, stop: Callable[[], bool] | None = None
    ) -> UpconvGenerator:
        """Train up to ``cfg.steps`` (from the current step); ``stop()`` returning True ends the
        loop cleanly after the current step. Returns the generator (eval mode)."""
        with self.capture:
            self.generator.train()
            while self.step < self.cfg.steps:
                losses = self.train_step()
                if callback is not None:
                    callback(TrainProgress(self.step, self.cfg.steps, losses, self))
                if stop is not None and stop():
                    break
        self.generator.eval()
        return self.generator

    def latent_upper(self) -> torch.Tensor:
        """(C,) 3 x each latent channel's standard deviation over the crops seen (icnn's
        ``act_range/3x``), a bound that keeps the optimized code among natural codes."""
        if self._count == 0:
            return torch.full_like(self._sum, float("inf"), dtype=torch.float32)
        mean = self._sum / self._count
        var = (self._sq / self._count - mean * mean).clamp_min(0)
        return (3 * var.sqrt()).float()

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self) -> dict:
        """Everything needed to resume exactly (a dict of tensors and plain values)."""
        return {
            "cnnvis_train_checkpoint": 1,
            "step": self.step,
            "config": asdict(self.cfg),
            "model": self.model.name,
            "layer": self.layer,
            "generator": self.generator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "disc": None if self.disc is None else self.disc.state_dict(),
            "opt_d": None if self.opt_d is None else self.opt_d.state_dict(),
            "moments": torch.stack([self._sum, self._sq]),
            "count": self._count,
            "rng": torch.get_rng_state(),
        }

    def start_from(self, weights: GeneratorFile, source: str) -> None:
        """Start from a generator file's weights (fine-tuning it with these settings); it must be
        this trainer's architecture for this model and layer."""
        gen = weights.generator
        if (weights.model, weights.layer) != (self.model.name, self.layer) or gen.config() != self.generator.config():
            raise InputError(
                f"--init '{source}' is a generator of {weights.model}'s {weights.layer} with {gen.config()}; "
                f"this run trains {self.model.name}'s {self.layer} with {self.generator.config()}"
            )
        self.generator.load_state_dict({k: v.float() for k, v in gen.state_dict().items()})

    def load_checkpoint(self, ck: dict, source: str = "checkpoint") -> None:
        """Resume from :meth:`checkpoint`'s dict; it must come from the same model, layer and settings."""
        if not isinstance(ck, dict) or ck.get("cnnvis_train_checkpoint") != 1:
            raise InputError(f"'{source}' is not a train-generator checkpoint; delete it or pass --out elsewhere")
        same = {k: v for k, v in asdict(self.cfg).items() if k != "steps"}
        theirs = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in (ck.get("config") or {}).items() if k != "steps"
        }
        if (ck.get("model"), ck.get("layer")) != (self.model.name, self.layer) or same != theirs:
            diff = next((k for k in same if same[k] != theirs.get(k)), "model/layer")
            raise InputError(
                f"checkpoint '{source}' was made with other settings ({diff}); rerun with the same flags, "
                "or pass --fresh to start afresh"
            )
        self.generator.load_state_dict(ck["generator"])
        self.opt_g.load_state_dict(ck["opt_g"])
        if self.disc is not None:
            self.disc.load_state_dict(ck["disc"])
            self.opt_d.load_state_dict(ck["opt_d"])
        self._sum, self._sq = (t.clone() for t in ck["moments"])
        self._count = int(ck["count"])
        self.step = int(ck["step"])
        torch.set_rng_state(ck["rng"])


def config_fields() -> list[str]:
    return [f.name for f in fields(TrainConfig)]
