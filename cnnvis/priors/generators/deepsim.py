"""Dosovitskiy & Brox's DeePSiM generators (2016, "release_deepsim_v0") as plain PyTorch modules.

These are the image priors of Nguyen et al. 2016 (fc6) and of Kamitani lab's icnn / cnnpref:
each inverts one AlexNet (CaffeNet) layer. Submodules carry the Caffe layer names of the
released ``generator.prototxt`` (``defc7``, ``deconv5``, ``conv5_1``, ``relu_conv5_1``, ...), so
the state dict of a :class:`cnnvis.models.caffe.CaffeNet` built from the released
``generator.prototxt`` + ``generator.caffemodel`` loads into them **by name**
(:func:`deepsim_from_caffe`). All layers have biases, as in the release (whose deconvolution
biases have ``lr_mult: 0``, so they keep their initial value, but are still stored). LeakyReLU
slope 0.3 throughout.

Output is Caffe's: BGR on a 0..255 scale minus the ImageNet mean ``bgr_mean = (104, 117, 123)``
(the mean icnn and the upconv ports add back); :meth:`Generator.to_rgb` maps it to RGB [0, 1].

Architectures (latent -> output; every conv/deconv followed by LeakyReLU unless noted):

- ``deepsim-fc6``, ``deepsim-fc7`` (4096,) -> 256 x 256 and ``deepsim-fc8`` (1000,) -> 256 x 256:
  ``defc7``, ``defc6``, ``defc5`` (InnerProduct 4096), ``reshape`` to 256 x 4 x 4, then
  ``deconv5`` (4x4 stride 2), ``conv5_1`` (3x3), ``deconv4``, ``conv4_1``, ``deconv3``, ``conv3_1``,
  ``deconv2``, ``deconv1``, ``deconv0`` (3 channels, no activation); the 3x3 ``conv*_1`` layers
  are Deconvolution layers in the release, so their weights are (in, out, 3, 3).
- ``deepsim-pool5`` (256, 6, 6) -> 256 x 256: ``Rconv6``, ``Rconv7`` (3x3, pad 1), ``Rconv8``
  (3x3, no pad) to 4 x 4, then ``deconv5`` .. ``deconv0`` as above (``deconv5`` takes 512).
- ``deepsim-conv4`` / ``deepsim-conv3`` (384, 13, 13) -> 256 x 256: ``Rconv6``-``Rconv8`` (3x3,
  3x3, 2x2, no pad) to 8 x 8, five deconv/conv stages to 16 channels, ``conv1_1`` to RGB,
  ``tanh``, ``conv1_1_tanh`` (x 255).
- ``deepsim-norm1`` (96, 27, 27) and ``deepsim-norm2`` (256, 13, 13) -> 240 x 240: ``Rconv6``
  (3x3 pad 2; stride 2 for norm1) to 15 x 15, ``Rconv7``, ``Rconv8``, four deconv/conv stages
  (no activation after ``deconv1``), ``conv1_1``, ``tanh``, x 255.

Sources, and how sure each is: fc6, fc7, fc8, pool5, conv4, norm1 and norm2 follow the
unmodified release prototxts kept in willwx/XDream (``prototxt/unmodified/*/generator.prototxt``);
fc7 and pool5 (called conv5 there) also match Evolving-AI-Lab/synthesizing's
``nets/upconv/*/generator.prototxt``, and fc6/fc7/fc8/pool5 match Binxu Wang's PyTorch port
(``upconvGAN`` in GAN_utils.py), which loads the converted release weights by these same names.
conv3 is **not** checked against its own prototxt: it copies conv4, as XDream's PyTorch port
(``deepsim-conv3`` -> ``DeePSiMConv34``) does; AlexNet's conv3 and conv4 outputs have the same
shape (384 x 13 x 13).
"""

from __future__ import annotations

import functools
import os
import re

import torch
from torch import nn

from cnnvis.errors import InputError
from cnnvis.priors.generators.base import Generator

SLOPE = 0.3  # DeePSiM's LeakyReLU negative slope
BGR_MEAN = (104.0, 117.0, 123.0)  # ImageNet mean, BGR, 0..255 (icnn's and the upconv ports')

# A layer: (caffe name, kind, args..., name of the LeakyReLU after it or None).
# kinds: fc (in, out), conv / deconv (in, out, kernel, stride, pad), reshape (C, H, W),
# tanh, scale (factor).


def _fc_tail(first_in: int) -> list[tuple]:
    """deconv5 .. deconv0 of the fc and pool5 generators: 4x4 -> 256x256."""
    return [
        ("deconv5", "deconv", first_in, 256, 4, 2, 1, "relu_deconv5"),
        ("conv5_1", "deconv", 256, 512, 3, 1, 1, "relu_conv5_1"),
        ("deconv4", "deconv", 512, 256, 4, 2, 1, "relu_deconv4"),
        ("conv4_1", "deconv", 256, 256, 3, 1, 1, "relu_conv4_1"),
        ("deconv3", "deconv", 256, 128, 4, 2, 1, "relu_deconv3"),
        ("conv3_1", "deconv", 128, 128, 3, 1, 1, "relu_conv3_1"),
        ("deconv2", "deconv", 128, 64, 4, 2, 1, "relu_deconv2"),
        ("deconv1", "deconv", 64, 32, 4, 2, 1, "relu_deconv1"),
        ("deconv0", "deconv", 32, 3, 4, 2, 1, None),
    ]


def _fc(n_in: int) -> list[tuple]:
    return [
        ("defc7", "fc", n_in, 4096, "relu_defc7"),
        ("defc6", "fc", 4096, 4096, "relu_defc6"),
        ("defc5", "fc", 4096, 4096, "relu_defc5"),
        ("reshape", "reshape", 256, 4, 4, None),
        *_fc_tail(256),
    ]


_TANH_OUT = [("tanh", "tanh", None), ("conv1_1_tanh", "scale", 255.0, None)]

_CONV34 = [
    ("Rconv6", "conv", 384, 384, 3, 1, 0, "Rrelu6"),
    ("Rconv7", "conv", 384, 512, 3, 1, 0, "Rrelu7"),
    ("Rconv8", "conv", 512, 512, 2, 1, 0, "Rrelu8"),
    ("deconv5", "deconv", 512, 256, 4, 2, 1, "relu_deconv5"),
    ("conv5_1", "deconv", 256, 256, 3, 1, 1, "relu_conv5_1"),
    ("deconv4", "deconv", 256, 128, 4, 2, 1, "relu_deconv4"),
    ("conv4_1", "deconv", 128, 128, 3, 1, 1, "relu_conv4_1"),
    ("deconv3", "deconv", 128, 128, 4, 2, 1, "relu_deconv3"),
    ("conv3_1", "deconv", 128, 128, 3, 1, 1, "relu_conv3_1"),
    ("deconv2", "deconv", 128, 64, 4, 2, 1, "relu_deconv2"),
    ("conv2_1", "conv", 64, 32, 3, 1, 1, "relu_conv2_1"),
    ("deconv1", "deconv", 32, 16, 4, 2, 1, "relu_deconv1"),
    ("conv1_1", "conv", 16, 3, 3, 1, 1, None),
    *_TANH_OUT,
]


def _norm(c_in: int, c6: int, stride6: int) -> list[tuple]:
    return [
        ("Rconv6", "conv", c_in, c6, 3, stride6, 2, "Rrelu6"),
        ("Rconv7", "conv", c6, 128, 3, 1, 1, "Rrelu7"),
        ("Rconv8", "conv", 128, 128, 3, 1, 1, "Rrelu8"),
        ("deconv4", "deconv", 128, 128, 4, 2, 1, "relu_deconv4"),
        ("conv4_1", "conv", 128, 128, 3, 1, 1, "relu_conv4_1"),
        ("deconv3", "deconv", 128, 64, 4, 2, 1, "relu_deconv3"),
        ("conv3_1", "conv", 64, 64, 3, 1, 1, "relu_conv3_1"),
        ("deconv2", "deconv", 64, 32, 4, 2, 1, "relu_deconv2"),
        ("conv2_1", "conv", 32, 32, 3, 1, 1, "relu_conv2_1"),
        ("deconv1", "deconv", 32, 16, 4, 2, 1, None),  # the release has no ReLU here
        ("conv1_1", "conv", 16, 3, 3, 1, 1, None),
        *_TANH_OUT,
    ]


# arch -> (layers, latent shape, output pixels per latent cell away from the borders)
_ARCHS: dict[str, tuple[list[tuple], tuple[int, ...], int]] = {
    "deepsim-fc6": (_fc(4096), (4096,), 1),
    "deepsim-fc7": (_fc(4096), (4096,), 1),
    "deepsim-fc8": (_fc(1000), (1000,), 1),
    "deepsim-pool5": (
        [
            ("Rconv6", "conv", 256, 512, 3, 1, 1, "Rrelu6"),
            ("Rconv7", "conv", 512, 512, 3, 1, 1, "Rrelu7"),
            ("Rconv8", "conv", 512, 512, 3, 1, 0, "Rrelu8"),
            *_fc_tail(512),
        ],
        (256, 6, 6),
        64,
    ),
    "deepsim-conv4": (_CONV34, (384, 13, 13), 32),
    "deepsim-conv3": (_CONV34, (384, 13, 13), 32),
    "deepsim-norm1": (_norm(96, 128, 2), (96, 27, 27), 8),
    "deepsim-norm2": (_norm(256, 256, 1), (256, 13, 13), 16),
}


class _Reshape(nn.Module):
    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


class _Scale(nn.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def _module(kind: str, args: tuple) -> nn.Module:
    if kind == "fc":
        return nn.Linear(*args)
    if kind == "conv":
        return nn.Conv2d(args[0], args[1], args[2], stride=args[3], padding=args[4])
    if kind == "deconv":
        return nn.ConvTranspose2d(args[0], args[1], args[2], stride=args[3], padding=args[4])
    if kind == "reshape":
        return _Reshape(args)
    if kind == "tanh":
        return nn.Tanh()
    return _Scale(*args)


class DeePSiMGenerator(Generator):
    """One of the release_deepsim_v0 generators; latent (B, *latent_shape) -> raw BGR (B, 3, H, W).

    Args:
        arch: a key of :data:`DEEPSIM_ARCHS` (``deepsim-fc6``, ``deepsim-pool5``, ...).

    The fc generators take vectors and always give 256 x 256. The others are fully
    convolutional (``spatial``): a larger feature map gives a larger image, about ``stride``
    pixels per extra latent cell; :meth:`output_hw` gives the exact size (e.g. pool5:
    ``64 * (h - 2)``, conv3/conv4: ``32 * (h - 5)``).
    """

    bgr_mean = BGR_MEAN

    def __init__(self, arch: str = "deepsim-fc6"):
        super().__init__()
        if arch not in _ARCHS:
            raise ValueError(f"unknown DeePSiM architecture '{arch}'; known: {', '.join(_ARCHS)}")
        layers, latent, stride = _ARCHS[arch]
        self.arch, self.latent_shape, self.stride = arch, latent, stride
        self.spatial = len(latent) == 3
        self._layers = layers
        for name, kind, *rest in layers:
            *args, act = rest
            self.add_module(name, _module(kind, tuple(args)))
            if act:
                self.add_module(act, nn.LeakyReLU(SLOPE))
        self.output_size = self.output_hw(*latent[1:]) if self.spatial else (256, 256)

    def config(self) -> dict:
        return {"arch": self.arch}

    def output_hw(self, h: int = 0, w: int = 0) -> tuple[int, int]:
        """Output (H, W) for a latent of spatial size (h, w) (ignored by the fc generators)."""
        for _, kind, *rest in self._layers:
            if kind == "reshape":
                h, w = rest[1], rest[2]
            elif kind in ("conv", "deconv"):
                k, s, p = rest[2], rest[3], rest[4]
                if kind == "conv":
                    h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
                else:
                    h, w = (h - 1) * s - 2 * p + k, (w - 1) * s - 2 * p + k
        return h, w

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        c = self.latent_shape[0]
        if z.dim() != len(self.latent_shape) + 1 or z.shape[1] != c:
            want = f"(B, {c}, h, w)" if self.spatial else f"(B, {c})"
            raise ValueError(f"{self.arch} expects a latent {want}, got {tuple(z.shape)}")
        for module in self.children():
            z = module(z)
        return z


DEEPSIM_ARCHS = {
    name: functools.partial(DeePSiMGenerator, arch=name)
    for name in (
        "deepsim-fc6",
        "deepsim-fc7",
        "deepsim-fc8",
        "deepsim-pool5",
        "deepsim-conv4",
        "deepsim-conv3",
        "deepsim-norm1",
        "deepsim-norm2",
    )
}
"""Architecture name -> a factory: ``DEEPSIM_ARCHS[name]()`` builds it (random weights); order is
the preference among architectures with identical weights (fc6 over fc7, conv4 over conv3)."""


def _shapes(arch: str) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):  # shapes only: no memory, no init time
        return {k: tuple(v.shape) for k, v in DeePSiMGenerator(arch).state_dict().items()}


def infer_deepsim_arch(state: dict[str, torch.Tensor], hint: str = "") -> str:
    """The architecture whose parameter names and shapes ``state`` has exactly.

    fc6/fc7 and conv3/conv4 have identical weights: ``hint`` (e.g. the caffemodel's path,
    ``.../fc7/generator.caffemodel``) picks between them, else the first (fc6, conv4) is taken.
    """
    have = {k: tuple(v.shape) for k, v in state.items()}
    matches = [a for a in DEEPSIM_ARCHS if _shapes(a) == have]
    if not matches:
        raise InputError(
            f"the Caffe net matches no DeePSiM generator ({', '.join(DEEPSIM_ARCHS)}); "
            "pass a release_deepsim_v0 generator.prototxt/.caffemodel or name the arch"
        )
    named = re.findall(r"(?<![a-z0-9])(fc[678]|pool5|conv[34]|norm[12])(?![0-9])", hint.lower())
    for token in reversed(named):
        if f"deepsim-{token}" in matches:
            return f"deepsim-{token}"
    return matches[0]


def deepsim_from_caffe(
    prototxt: str | os.PathLike, caffemodel: str | os.PathLike, arch: str | None = None
) -> DeePSiMGenerator:
    """A DeePSiM generator with the weights of a release ``generator.prototxt`` + ``generator.caffemodel``.

    ``arch`` (``deepsim-fc6``, ...) defaults to the one inferred from the net's layers and the
    file paths (:func:`infer_deepsim_arch`). Returns the generator in eval mode.

    Raises:
        InputError: unreadable files, or a net that does not fit the architecture.
    """
    from cnnvis.models.caffe import CaffeNet

    net = CaffeNet(prototxt, caffemodel)
    state = net.state_dict()
    if arch is None:
        arch = infer_deepsim_arch(state, f"{os.fspath(prototxt)} {os.fspath(caffemodel)}")
    elif arch not in DEEPSIM_ARCHS:
        raise InputError(f"unknown DeePSiM architecture '{arch}'; use one of {', '.join(DEEPSIM_ARCHS)}")
    want = _shapes(arch)
    have = {k: tuple(v.shape) for k, v in state.items()}
    if want != have:
        k = next((k for k in want if want[k] != have.get(k)), None) or next(k for k in have if k not in want)
        raise InputError(
            f"'{prototxt}' does not fit {arch} (at '{k}': {have.get(k)} vs {want.get(k)}); "
            "pass that generator's prototxt and caffemodel, or the right arch"
        )
    with torch.device("meta"):
        gen = DeePSiMGenerator(arch)
    gen.load_state_dict(state, assign=True)
    return gen.eval()
