"""Text objectives for CLIP models: make the image (every tile of it) match a prompt.

``-O text:"a city made of glass"`` scores each tile by the cosine between its CLIP image
embedding (layer ``embed`` of a ``clip:`` model, see :mod:`cnnvis.models.clip`) and the
prompt's text embedding, as in CLIP-guided generation (Radford et al. 2021; the "CLIP-guided
diffusion" and "VQGAN+CLIP" notebooks). A negative weight steers away from the prompt.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnvis.errors import InputError
from cnnvis.models.clip import EMBED_LAYER
from cnnvis.objectives.base import Capture, Objective


def text_encoder_of(module) -> object | None:
    """The prompt encoder of a ``clip:`` model's module (None for any other model)."""
    return getattr(module, "encode_text", None)


class TextSimilarity(Objective):
    """Cosine between each tile's image embedding (B, D) and the embedding of ``prompt``: (B,),
    in [-1, 1].

    Args:
        prompt: the text.
        text_embedding: its unit-length CLIP text embedding (D,).
    """

    def __init__(self, prompt: str, text_embedding: torch.Tensor):
        self.prompt = prompt
        self.text = text_embedding.detach().float().flatten()
        self.layers = (EMBED_LAYER,)

    def check(self, feats) -> None:
        emb = feats[EMBED_LAYER]
        if emb.dim() != 2 or emb.shape[1] != self.text.numel():
            raise InputError(
                f"-O text: the image embedding has shape {tuple(emb.shape)[1:]} but the text's has "
                f"{self.text.numel()} values; use a clip: model"
            )

    def score(self, cap: Capture) -> torch.Tensor:
        emb = cap.feats[EMBED_LAYER]
        return F.cosine_similarity(emb, self.text.to(emb).unsqueeze(0), dim=1)

    def __repr__(self) -> str:
        return f"TextSimilarity({self.prompt!r})"
