"""Which network a command visualizes, with which weights, on which device: the options every
command that loads a model shares, declared once (no torch at import: ``--help`` reads them)."""

from __future__ import annotations

from cnnvis.config import Options, group, setting
from cnnvis.defaults import DEFAULT_MODEL


@group("model")
class ModelOptions(Options):
    """The model of a run: a registry name, ``timm:NAME``, ``package.module:factory``, a
    TorchScript file, a Caffe deploy .prototxt or a convert-caffe file (see
    :func:`cnnvis.models.registry.load_model`)."""

    model: str = setting(
        DEFAULT_MODEL,
        "Registry name, timm:NAME, package.module:factory, a TorchScript file, a Caffe deploy .prototxt "
        "(--weights its .caffemodel) or a convert-caffe file.",
        short="-m",
    )
    weights: str | None = setting(None, "Local state-dict file, or 'random'.", default_text="the pretrained weights")
    device: str = setting("auto", "cpu, cuda, cuda:N, mps or auto.")

    def layer_table(self):
        """The :class:`cnnvis.models.layer_table.LayerTable` shipped for this model (its layers and
        shapes, known without loading it), or None for a model that must be loaded to know them."""
        from cnnvis.models.layer_table import shipped_table

        return shipped_table(self.model)


@group("layers")
class LayersOptions(Options):
    """What ``cnnvis layers`` lists: a model's dotted layer names and output shapes at a size."""

    model: str = setting(DEFAULT_MODEL, "The model whose layers to list.", argument=True)
    size: int | None = setting(None, "Input side in pixels.", low=1, default_text="the model's input size")
    weights: str = setting("random", "Weights to load (shapes do not depend on them).")
    show_all: bool = setting(False, "Also list modules whose output is not a single tensor.", flag="--all")
