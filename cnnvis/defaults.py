"""The tuned defaults of each command, written once (no torch: the CLI's --help reads them).

:class:`cnnvis.config.RenderConfig` holds the defaults of a plain render (and of ``dream``).
``invert`` and ``prefer`` apply the tables below over them, in this order: the command's table,
the chosen optimizer's (invert), the layer-dependent one (invert), then the user's options.
:mod:`cnnvis.recipes.recon` applies them; :mod:`cnnvis.cli.options` shows them in --help.
"""

from __future__ import annotations

# The embedded model (EfficientNet-Lite0, ImageNet weights from its PyPI package): every command's default.
DEFAULT_MODEL = "efficientnet-lite0"
# Quality of every .jpg output (imageio/pillow's scale, 1-100).
JPEG_QUALITY = 95

# Where a layer's features are read: before or after its activation function.
ACTIVATION_SIDES = ("pre", "post")
# The feature distances of an inversion (cnnvis.objectives.losses).
FEATURE_LOSSES = ("l2", "l1", "inner", "gram", "corr")

# ---------------------------------------------------------------------------- dream
# The layer each known model dreams at when no --layer or --objective is given.
DEFAULT_LAYERS = {
    "efficientnet-lite0": "blocks.4.2",
    "efficientnet-lite1": "blocks.4.2",
    "efficientnet-lite2": "blocks.4.2",
}
# With no sizing flag, dream grows through this many octaves up to the image size.
DEFAULT_OCTAVES = 4
# ... and, when --batch-size is not given and the network runs in bfloat16, this many tiles per pass: bf16 halves
# the activations' bytes, and oneDNN's bf16 kernels gain from larger batches (bench/speed.py at 2048x2048 with
# channels-last: 8 tiles 1.18x faster than 4 in bf16; in float32 8 tiles were slower). The manifest records it.
DREAM_BF16_BATCH = 8
# cnn-vis's layer amplification: gradient l1 * |a| + l2 * clip(a, -grad_clip, grad_clip).
DREAM_L1 = 1.0
DREAM_L2 = 1.0
DREAM_GRAD_CLIP = 5.0
# The layer amplifications: cnn-vis's l1/l2/clip, or Google's deepdream mean square.
DREAM_FORMS = ("cnnvis", "meansquare")

# ---------------------------------------------------------------------------- invert
# Inversion defaults (bench/inversion.py). Pixel units are [0, 1].
INVERT_DEFAULTS = dict(
    steps=200,
    optimizer="adam",
    tv_weight=2.0,
    init_scale=0.0,
    init_blur=0.0,
    normalize_grad=True,
    shift=False,
    clamp_pixels=True,
    batch_size=4,
    # Float32: in bf16 the features of the tiles and of the target drift apart by the rounding
    # (bench/speed_targets.py measured the correlation at every layer, bench/RESULTS.md).
    precision="fp32",
)
# ... and per optimizer, applied under the user's options
INVERT_OPTIMIZER_DEFAULTS = {
    "adam": dict(lr=0.1, lr_end=0.01),
    "rmsprop": dict(lr=0.01, lr_end=0.001),
    "sgd": dict(lr=0.01, momentum=0.9),
    "gd": dict(lr=2 / 255, lr_end=1e-3 / 255, momentum=0.9),  # icnn's schedule in [0, 1] units
    # L-BFGS steps the decorrelated Fourier image: its 1/f spectrum scaling preconditions the
    # problem (every frequency moves alike), which L-BFGS's scalar initial Hessian cannot do for
    # pixels; on pixels it trailed Adam (0.84 / 0.46 at blocks.1 / 3), on the Fourier image it
    # matches it (bench/RESULTS.md, issue 14). Its objective scale is fixed at the first
    # evaluation, when the gradient is largest, so TV weighs more later than under Adam's
    # per-step normalization: a lighter TV.
    "lbfgs": dict(lr=1.0, param="fft", tv_weight=0.3),
}

# ---------------------------------------------------------------------------- prefer
# Preferred-image defaults (bench/prefer.py): decorrelated Fourier image + transformation robustness.
# Lighter transforms than lucent's (jitter 8, zoom 10 %, rotation 10 degrees) reach a higher
# activation in half its steps and still read as feature visualizations (bench/prefer.py).
PREFER_DEFAULTS = dict(
    steps=128,
    optimizer="adam",
    lr=0.1,
    param="fft",
    jitter=2,
    transform_scale=0.03,
    transform_rotate=3.0,
    tv_weight=0.0,
    normalize_grad=False,
    shift=False,
    init_blur=0.0,
)
# ... up to this side (pixels) the canvas is one tile (the network sees the whole image, as in
# cnnpref and lucid); a larger canvas is tiled at the model's input size. One 2048x2048 tile of
# Lite0 held 7.2 GB; a 4096x4096 one would need about 29 GB.
PREFER_ONE_TILE_MAX = 1024
# ... and with an image mask (--rf-mask): the Fourier image changes every pixel at once, so a
# pixel mask needs the pixel parameterization.
PREFER_MASK_DEFAULTS = dict(
    param="pixel",
    optimizer="adam",
    lr=0.02,
    jitter=0,
    transform_scale=0.0,
    transform_rotate=0.0,
    tv_weight=0.5,
    normalize_grad=True,
)
# ... and per parameterization other than the Fourier image's (bench/params.py): the learning
# rate in the parameters' own units (a CPPN's weights, a low-resolution tensor's pixels).
PREFER_PARAM_DEFAULTS = {
    "cppn": dict(lr=0.005),
    "lowres": dict(lr=0.05),
    # MACO (bench/quality.py, tuning classes): stronger transforms make its classes transfer. It stays opt-in: on
    # 10 tuning classes its classes transferred less often than the Fourier image's (top-1 0.75 against 0.80, top-5
    # 0.75 against 0.95), though its spectral slope is the photos' (-1.31 against -0.95; photos -1.50)
    "maco": dict(lr=0.1, jitter=8, transform_scale=0.2, transform_rotate=10.0),
}
# ... and with --robust (on by default for class visualizations: a unit of the network's output layer on the
# Fourier image). Edition 1: lucent-strength transforms, chosen on the 10 tuning classes of bench/quality.py (top-1 of
# Lite1 and Lite2, 128 steps): 0.90 in 5.0 s, against 0.80 for prefer's mild transforms and lucent's 0.85 in 7.7 s;
# on 120 classes nobody chose on it read 0.904, level with lucent, below torch-dreams, the best peer (0.929).
# Edition 2, chosen on 30 more tuning classes (bench/RESULTS.md, "A photo's spectrum for class visualizations"):
# - two views a step: 0.90 against one view's 0.85 (paired +0.050 ± 0.037), within the best peer's seconds;
# - a steeper spectrum, 1/f**1.5 (torch-dreams's), at a third of the learning rate: the slope of photos (-1.30;
#   photos -1.40, one view -0.88) with 0.4 % of colour values clipped (photos 4.8 %), at 0.92 (paired +0.017 ±
#   0.061). At lr 0.1 the same spectrum transferred best (1.00) but clipped a third of its values: a saturated
#   poster, not a photo's colours.
# Each edition stays, so that a run recorded under an older one renders as it was made (prefer's --robust-edition,
# which replay sets from the manifest; a manifest without it is edition 1).
PREFER_ROBUST_EDITIONS = {
    1: dict(jitter=8, transform_scale=0.2, transform_rotate=10.0),
    2: dict(jitter=8, transform_scale=0.2, transform_rotate=10.0, transform_views=2, fft_decay=1.5, lr=0.03),
}
PREFER_ROBUST_EDITION = max(PREFER_ROBUST_EDITIONS)
PREFER_ROBUST_DEFAULTS = PREFER_ROBUST_EDITIONS[PREFER_ROBUST_EDITION]
# ... and with --interpolate on the Fourier image: its frames share low-resolution terms
# (lucid's aligned interpolation), so they morph instead of each finding its own layout. At lucid's
# strength (shared_weight 1) the terms carried so much of every image that its first and last
# frames correlated at 0.48-0.51 (the tuning pairs of bench/interpolation.py; 0.77 at 224 px, issue
# 24); at 0.5, 0.28 on both, with neighbours still closer than the ends (0.41-0.60); at 0.25 the
# neighbours are nearly strangers (0.22). bench/RESULTS.md has the validation pairs.
PREFER_INTERPOLATE_DEFAULTS = dict(shared=True, shared_weight=0.5)

# ---------------------------------------------------------------------------- invert, by layer
# ... and for layers of stride 8 or more (blocks.3 and deeper on EfficientNet-Lite0), whose
# features have lost fine detail: a stronger TV prior and a shrinking blur (icnn's image_blur)
# lift the pixel correlation at blocks.5 from 0.28 to 0.37, but cost blocks.1 0.04.
INVERT_DEEP_DEFAULTS = dict(tv_weight=4.0, blur_every=4, blur_sigma=1.5, blur_sigma_end=0.5)
DEEP_STRIDE = 8
# ... and the optimizer by stride, when none is given: up to stride 16 (blocks.1-4 of Lite0)
# L-BFGS on the Fourier image reconstructs best (chosen on the tuning photos: 0.950 / 0.752
# against Adam's 0.906 / 0.676 at blocks.1 / 3; confirmed on the validation photos), at 2-3x
# the seconds; deeper, Adam on pixels stays ahead (bench/RESULTS.md, issue 14).
INVERT_SHALLOW_DEFAULTS = dict(optimizer="lbfgs")
SHALLOW_STRIDE = 16
# ... and with L-BFGS at stride 8 or more (blocks.3-4): a 2-pixel jitter, drawn once per step, so
# the line search sees one fixed objective (cnnvis.pipeline.gradient). It averages out the
# network's own grid at its stride: on the tuning photos at blocks.3 the grid ratio went from
# 1.15 / 1.20 to 1.11 / 1.17 at equal pixel correlation (0.752 / 0.754); on the validation
# photos from 1.26 / 1.16 to 1.17 / 1.10, and 0.703 to 0.745. At blocks.1 it raised the
# tuning photos' grid to 1.10 / 1.25, so shallower layers go without (bench/RESULTS.md).
INVERT_LBFGS_DEEP_DEFAULTS = dict(jitter=2)
# ... and, with Adam, for the last layers of the network (past 90 % of its modules: conv_head),
# whose features say little about colour: pixel priors leave colours arbitrary (mean pixel
# correlation 0.01), a decorrelated Fourier image (Olah et al. 2017) with strong TV keeps them
# muted and the layout right (0.13-0.18); bench/RESULTS.md. At blocks.5 the pixel priors stay
# better (0.36 against 0.21).
INVERT_TOP_DEFAULTS = dict(param="fft", lr=0.05, lr_end=0.01, tv_weight=24.0)
TOP_DEPTH = 0.95  # blocks.5 ends at 0.91, conv_head at 0.975 of Lite0's leaf modules
# ... and there, from a noise start, this many starts rendered together, keeping the one whose features match
# best (the lowest feature error, known without the photo's pixels). At conv_head the seed alone moved one tuning
# photo's pixel correlation from 0.05 to 0.53; over three seeds the best-matching start gave a mean of 0.315 against
# 0.218 for a seed at random, and neither bad draw. On the validation photos: 0.355 against 0.273 for one start,
# lowest photo -0.09 against -0.15, in 2.26x the seconds (bench/RESULTS.md, issue 25).
INVERT_TOP_STARTS = 3

# ---------------------------------------------------------------------------- any command, with --prior dgn
# With a DGN prior (cnnvis.priors.dgn) the generator is the image prior: Adam on the latent, no
# pixel priors (bench/dgn.py). dream takes only latent_lr (the latent's units are not pixels).
DGN_DEFAULTS = dict(optimizer="adam", latent_lr=0.05, tv_weight=0.0)
# ... and invert refines the generator's image in pixel space for this share of the steps, with
# the layer's pixel defaults (cnnvis.recipes.recon._invert_stages; bench/dgn.py, issue 14).
DGN_INVERT_REFINE = 0.5
# ... and prefer (and every objective render) for this share, under the preferred-image defaults.
DGN_PREFER_REFINE = 0.25
# ... and invert's default (--prior auto) from layers of this stride (blocks.5 and conv_head of Lite0), on a model
# with a shipped generator: with its lattice removed (cnnvis.priors.lattice) the demo generator reconstructed the
# tuning photos better than the pixel priors did, 0.422 / 0.314 against 0.373 / 0.178 at blocks.5 / conv_head
# (bench/RESULTS.md, issue 25).
DGN_INVERT_STRIDE = 32

# cnnvis atlas: what one unit's image maximizes (the whole channel, or its centre position), and
# how many units render together by default (one tile each: also the tiles per forward pass).
UNIT_KINDS = ("channel", "neuron")
ATLAS_BATCH = 8

# dream --channel-mode: which channels of a layer to dream (neural-dream's -channel_mode)
CHANNEL_MODES = ("strongest", "weakest", "average", "all")

# ---------------------------------------------------------------------------- train-generator
# A new generator upsamples with DeePSiM's transposed convolutions and trains with the seam
# term (cnnvis/priors/train.py) at weight 1. Without the term no upsampling removed the grid at
# the layer's stride after 4000 CPU steps: grid ratios of its drawings of unseen photos 3.86 /
# 4.67 (bilinear resize-convolutions), 1.83 / 1.75 (nearest), 1.44 / 1.27 (transposed); with
# it the transposed generator draws them at 1.02 / 1.02 and learns fastest (nearest resizing trailed
# in pixel correlation at equal steps); cnnvis/data/README.md, issue 14.
# The upsampling of a generator's stages: DeePSiM's transposed convolutions, or resize-convolutions.
UPSAMPLING = ("transposed", "nearest", "bilinear")
GENERATOR_UPSAMPLE = "transposed"
GENERATOR_GRID_WEIGHT = 1.0
# The lattice term: the log of the spectrum's peaks at 2, 4, 8 and 16 px over their neighbours,
# squared (cnnvis/canvas/stride_grid.py). Off by default: fine-tuning the demo generator with it
# (0.01, then 0.05) flattened its decodes' peaks from 7-41x to 1.0-1.6x but lowered DGN inversions
# of unseen photos at blocks.5 from 0.404 to 0.319 and at conv_head from 0.269 to 0.066
# (bench/RESULTS.md, issue 24).
GENERATOR_LATTICE_WEIGHT = 0.0
