"""The settings of training a generator (:mod:`cnnvis.priors.train`) and of ``cnnvis
train-generator``, each declared once: the CLI generates its flags from these groups, and
validation comes from the same declarations. No torch at import (``--help`` reads them)::

    cfg = TrainConfig(steps=4000, adv_weight=0.1)
"""

from __future__ import annotations

from cnnvis.config import Options, group, setting
from cnnvis.defaults import GENERATOR_GRID_WEIGHT, GENERATOR_LATTICE_WEIGHT, GENERATOR_UPSAMPLE, UPSAMPLING
from cnnvis.errors import InputError

# The upsamplings of a generator's stages: DeePSiM's transposed convolutions, or resize-convolutions.
# Here, not only in cnnvis.priors.generators.upconv (which imports torch), so that --help lists them
# without torch; tests/priors/test_train_config.py checks that the two agree.


@group("train")
class TrainConfig(Options):
    """Settings of :class:`cnnvis.priors.train.GeneratorTrainer`: the loss terms' weights
    (see :mod:`cnnvis.priors.train`), the crops, the optimizer and the generator's shape. The
    generator is fully convolutional, so it generalizes to other sizes than ``size``;
    ``feature_layers`` empty compares at the inverted layer itself."""

    steps: int = setting(2000, "Training steps in all (rerun with more to continue).", low=1)
    batch_size: int = setting(8, "Crops per step.", low=1)
    size: int = setting(128, "Crop side in pixels (a multiple of the layer's stride).", low=1)
    lr: float = setting(5e-4, "Adam learning rate.", low=0, low_open=True)
    scale_min: float = setting(
        0.1,
        "Smallest random crop, as a fraction of the image area.",
        low=0,
        high=1,
        low_open=True,
        note="a fraction of the image area",
    )
    pixel_weight: float = setting(1.0, "Weight of the pixel loss.", low=0)
    feature_weight: float = setting(0.1, "Weight of the feature loss.", low=0)
    adv_weight: float = setting(0.0, "Weight of the adversarial loss (0 = no discriminator).", low=0)
    grid_weight: float = setting(
        GENERATOR_GRID_WEIGHT,
        "Weight of the seam term: flattens the output's edge energy per phase of the layer's stride (0 = off).",
        low=0,
    )
    lattice_weight: float = setting(
        GENERATOR_LATTICE_WEIGHT,
        "Weight of the lattice term: flattens the output's spectrum at periods of 2, 4, 8 and 16 pixels, "
        "where transposed convolutions leave a checkerboard (0 = off).",
        low=0,
    )
    feature_layers: tuple[str, ...] = setting(
        (), "Comparator layer for the feature loss (repeatable).", flag="--feature-layer", default_text="--layer"
    )
    width: int = setting(128, "Generator base width (channels).", low=1)
    upsample: str = setting(
        GENERATOR_UPSAMPLE,
        "Upsampling of each stage: resize-convolutions (bilinear or nearest; no checkerboard) or DeePSiM's "
        "transposed convolutions.",
        choices=UPSAMPLING,
    )
    seed: int = setting(0, "Seed of the initial weights and the crops.")


@group("train_command")
class TrainCommandOptions(Options):
    """What ``cnnvis train-generator`` trains on and writes, beside its :class:`TrainConfig`:
    the layer, the photos, the generator file and its checkpoints."""

    layer: str | None = setting(
        None, "The layer to invert (a spatial layer, e.g. blocks.5.0.bn1 on efficientnet-lite0). Required.", short="-l"
    )
    images: str | None = setting(None, "Folder of training photos (.jpg/.png). Required.")
    out: str | None = setting(None, "Generator file to write (.pt); its checkpoint is OUT.ckpt. Required.", short="-o")
    checkpoint_every: int = setting(200, "Steps between checkpoints (0 = only at the end or on Ctrl-C).", low=0)
    fresh: bool = setting(False, "Ignore an existing checkpoint and start afresh.")
    init: str | None = setting(
        None,
        "A generator file to start from (fine-tune it with these settings); same model, layer and architecture.",
        default_text="random weights",
    )
    half: bool = setting(False, "Store the generator's weights as float16 (half the file size).")
    quiet: bool = setting(False, "No progress bar.", short="-q")

    def check(self) -> None:
        """Refuse a missing required flag (one line: the flag and an example), before anything loads."""
        examples = {"layer": "--layer blocks.5.0.bn1", "images": "--images photos", "out": "--out gen.pt"}
        for name, example in examples.items():
            if not getattr(self, name):
                raise InputError(f"train-generator needs --{name}; e.g. {example}")
