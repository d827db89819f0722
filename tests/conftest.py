"""Shared fixtures: a tiny seeded CNN, the embedded EfficientNet-Lite0, image files, factory modules."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections import OrderedDict

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from torch import nn

import cnnvis
from cnnvis.models import LoadedModel, _disable_inplace

# One intra-op thread: the tensors here are tiny, and OpenMP spinning on 2 shared cores costs
# ~100x on small convolutions when anything else runs on the machine.
torch.set_num_threads(1)


def pytest_configure(config):
    # torch.jit.* deprecation notices and imageio's plugin probing are noise for this suite.
    config.addinivalue_line("filterwarnings", "ignore::FutureWarning:torch.jit")
    config.addinivalue_line("filterwarnings", "ignore:The legacy `DICOM` plugin:DeprecationWarning")


def build_tiny_cnn(inplace: bool = True) -> nn.Sequential:
    """The tiny seeded CNN of the suite: 3 -> 8 -> 16 (stride 2) -> 16 channels."""
    torch.manual_seed(0)
    net = nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 8, 3, padding=1)),
        ("relu1", nn.ReLU(inplace=inplace)),
        ("conv2", nn.Conv2d(8, 16, 3, stride=2, padding=1)),
        ("relu2", nn.ReLU()),
        ("conv3", nn.Conv2d(16, 16, 3, padding=1)),
    ]))
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


@pytest.fixture
def tiny_model() -> LoadedModel:
    net = build_tiny_cnn(inplace=True)
    _disable_inplace(net)
    return LoadedModel(name="tiny", module=net, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), input_size=32, min_size=8)


@pytest.fixture(scope="session")
def lite0() -> LoadedModel:
    return cnnvis.load_model("efficientnet-lite0")


def smooth_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A deterministic uint8 (h, w, 3) test picture: smooth gradients plus mild noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / max(w - 1, 1), yy / max(h - 1, 1), 0.5 + 0.4 * np.sin((xx + yy) / 6.0)], axis=2)
    img = np.clip(0.1 + 0.8 * base + rng.normal(0, 0.05, (h, w, 3)), 0, 1)
    return (img * 255).round().astype(np.uint8)


@pytest.fixture
def make_image(tmp_path):
    """Write a small image file through imageio and return its path (str)."""

    def _make(name: str = "img.png", h: int = 48, w: int = 64, seed: int = 0, array: np.ndarray | None = None) -> str:
        path = tmp_path / name
        arr = smooth_rgb(h, w, seed) if array is None else array
        iio.imwrite(path, arr)
        return str(path)

    return _make


FACTORY_SOURCE = textwrap.dedent('''
    from collections import OrderedDict

    import torch
    from torch import nn


    def factory():
        torch.manual_seed(0)
        return nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 8, 3, padding=1)),
            ("relu1", nn.ReLU(inplace=True)),
            ("conv2", nn.Conv2d(8, 16, 3, stride=2, padding=1)),
            ("relu2", nn.ReLU()),
            ("conv3", nn.Conv2d(16, 16, 3, padding=1)),
        ]))


    not_a_factory = 3
''')


def write_factory_module(directory, name: str | None = None) -> str:
    """Write a module defining ``factory()`` (the tiny CNN) into ``directory``; return its module name."""
    name = name or f"cnnvis_test_factory_{uuid.uuid4().hex[:10]}"
    (directory / f"{name}.py").write_text(FACTORY_SOURCE)
    return name


@pytest.fixture
def factory_module(tmp_path, monkeypatch):
    """A tiny-CNN factory module importable for this test; returns the module name."""
    d = tmp_path / "factory_pkg"
    d.mkdir()
    name = write_factory_module(d)
    monkeypatch.syspath_prepend(str(d))
    yield name
    sys.modules.pop(name, None)
