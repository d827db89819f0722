"""Caffe models without Caffe: read ``.prototxt`` / ``.caffemodel`` files and run them as PyTorch modules.

``read_prototxt`` / ``read_caffemodel`` parse the files with protobuf message classes built at run
time (:mod:`cnnvis.models.caffe.proto`); :class:`CaffeNet` runs the net layer by layer with each Caffe
layer a named submodule (forward hooks work); ``save_converted`` / ``load_converted`` store a
converted net as one ``torch.save`` file.
"""

from __future__ import annotations

from cnnvis.models.caffe.builders import SUPPORTED
from cnnvis.models.caffe.convert import CaffeNet, convert_caffe, load_converted, save_converted
from cnnvis.models.caffe.reader import CaffeLayer, net_layers, parse_prototxt, read_caffemodel, read_prototxt

__all__ = [
    "SUPPORTED",
    "CaffeLayer",
    "CaffeNet",
    "convert_caffe",
    "load_converted",
    "net_layers",
    "parse_prototxt",
    "read_caffemodel",
    "read_prototxt",
    "save_converted",
]
