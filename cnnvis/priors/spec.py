"""What generator prior a run asks for: a typed spec, declared once, that the CLI builds from its
flags and that travels as it is (to a Ray worker, into a manifest); :func:`cnnvis.priors.dgn.prior_of`
makes the :class:`cnnvis.priors.dgn.DGNPrior` where the model is. No torch at import (``--help``)."""

from __future__ import annotations

from cnnvis.config import Options, group, setting
from cnnvis.errors import InputError

PRIOR_KINDS = ("auto", "none", "dgn")
LATENT_INITS = ("auto", "zeros", "noise", "image")
GENERATOR_FITS = ("crop", "resize")
LATTICE_MODES = ("remove", "keep")  # cnnvis.priors.lattice; here so that --help needs no torch
# How a run recorded before a setting existed ran: replay fills these in (cnnvis/cli/replay.py)
BEFORE_LATTICE_SETTINGS = {"dgn_lattice": "keep"}


@group("prior")
class PriorSpec(Options):
    """The deep generator network prior (Nguyen et al. 2016) of a run, or none."""

    prior: str = setting(
        "auto",
        "dgn: optimize a deep generator network's latent instead of pixels (Nguyen et al. 2016); auto: the "
        "command's default, which is none except for invert at layers of stride >= 32 of a model with a shipped "
        "generator (efficientnet-lite0's deep layers).",
        choices=PRIOR_KINDS,
    )
    generator: str | None = setting(
        None,
        "Generator file (.pt from train-generator or convert-caffe).",
        default_text="the shipped demo generator for efficientnet-lite0",
    )
    latent_bound: str | None = setting(
        None,
        "Per-channel upper bounds of the latent (.txt or .npy, icnn's act_range), or 'none'.",
        default_text="the generator file's",
    )
    latent_init: str = setting(
        "auto",
        "Initial latent: the encoding of the start image (auto when there is one), zeros or noise.",
        choices=LATENT_INITS,
    )
    dgn_max_side: int | None = setting(
        None,
        "Largest canvas side optimized through the generator; larger sizes refine pixels.",
        low=1,
        default_text="its output side, 1024 for spatial generators",
    )
    generator_fit: str = setting(
        "crop", "A fixed-size generator's image meets the canvas by centre crop or resize.", choices=GENERATOR_FITS
    )
    dgn_lattice: str = setting(
        "remove",
        "remove: subtract the pattern a spatial generator repeats every stride pixels (its transposed "
        "convolutions' lattice) before the model sees its image; keep: the generator's raw image.",
        choices=LATTICE_MODES,
    )

    @property
    def wanted(self) -> bool:
        """Whether the run asks for a generator (``--prior dgn`` or a ``--generator``); ``auto`` leaves
        it to the command (:func:`cnnvis.priors.dgn.prior_of`)."""
        return self.prior == "dgn" or bool(self.generator)

    def check(self) -> None:
        """The flags that need a generator prior, refused without one (one line)."""
        if not self.wanted and (self.latent_bound or self.dgn_max_side):
            raise InputError("--latent-bound and --dgn-max-side apply to a generator prior; add --prior dgn")
