"""cnnvis: deep dream, preferred images and feature inversion through one multiscale tiled pipeline."""

from .capture import FeatureCapture, list_layers
from .config import RenderConfig
from .errors import InputError
from .models import DEFAULT_MODEL, LoadedModel, load_model
from .objectives import Capture, Channel, Dream, Guide, Neuron, Objective
from .render import Progress, Render, pick_device, render

__version__ = "0.1.0"

__all__ = [
    "Capture", "Channel", "DEFAULT_MODEL", "Dream", "FeatureCapture", "Guide", "InputError",
    "LoadedModel", "Neuron", "Objective", "Progress", "Render", "RenderConfig", "list_layers",
    "load_model", "pick_device", "render",
]
