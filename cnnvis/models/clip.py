"""CLIP image towers from open_clip (the optional ``[clip]`` extra): ``clip:NAME[@TAG]``.

The network cnnvis visualizes is the image tower, wrapped so that its embedding is a layer
(``embed``, (B, D)) like any other; its own layers keep open_clip's names under ``visual.``
(``visual.transformer.resblocks.6``: tokens with the class token as prefix). The text tower
stays outside the module tree (its layers are not the image's) and only encodes prompts for
text objectives (:class:`cnnvis.objectives.text.TextSimilarity`).

Preprocessing (mean, std, input size) is open_clip's own for the model. CLIP's towers take only
their input size: a ViT's patch grid and a ResNet's attention pool have fixed position
embeddings.
"""

from __future__ import annotations

import contextlib
import logging

import torch
from torch import nn

from cnnvis.errors import InputError, did_you_mean

CLIP_PREFIX = "clip:"
EMBED_LAYER = "embed"  # the image embedding, (B, D)
CLIP_EXTRA_HINT = "pip install 'cnnvis[clip]'"


class ClipImageTower(nn.Module):
    """An open_clip model's image tower: ``forward(x)`` (B, 3, S, S) normalized -> (B, D)
    embedding, hookable as layer ``embed``; :meth:`encode_text` embeds prompts with the text
    tower of the same model."""

    def __init__(self, clip_model: nn.Module, tokenizer, name: str):
        super().__init__()
        self.visual = clip_model.visual
        self.embed = nn.Identity()
        self._text = (clip_model, tokenizer)  # a tuple: not a submodule, so not a layer of the image
        self.clip_name = name
        side = clip_model.visual.image_size
        self.fixed_input_size = int(side[-1] if isinstance(side, (tuple, list)) else side)
        if getattr(clip_model.visual, "class_embedding", None) is not None:
            self.num_prefix_tokens = 1  # a ViT tower: the class token leads every sequence

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.visual(x))

    @torch.no_grad()
    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """Unit-length text embeddings (len(prompts), D), float32, on the CPU."""
        model, tokenizer = self._text
        device = next(model.token_embedding.parameters()).device
        emb = model.encode_text(tokenizer(list(prompts)).to(device)).float().cpu()
        return emb / emb.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _open_clip():
    try:
        import open_clip
    except ImportError:
        raise InputError(f"clip: models need the clip extra (open_clip); run: {CLIP_EXTRA_HINT}") from None
    return open_clip


@contextlib.contextmanager
def _quiet_root_logger():
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def parse_clip_name(spec: str) -> tuple[str, str | None]:
    """``ViT-B-32@openai`` -> (``ViT-B-32``, ``openai``); no tag -> (name, None)."""
    name, _, tag = spec.partition("@")
    return name, (tag or None)


def build_clip(spec: str, weights: str | None, load_state) -> tuple[nn.Module, tuple, tuple, int]:
    """(module, mean, std, input size) of ``clip:`` model ``spec``.

    ``weights``: None for open_clip's pretrained weights (tag after ``@``, else the model's
    first), ``"random"``, or a local checkpoint file, which ``load_state(model, path)`` reads as
    data (never open_clip's own loader, which may unpickle).
    """
    open_clip = _open_clip()
    name, tag = parse_clip_name(spec)
    names = open_clip.list_models()
    if name not in names:
        raise InputError(
            f"unknown CLIP model '{name}'{did_you_mean(name, names)}; list them with open_clip.list_models()"
        )
    tags = open_clip.list_pretrained_tags_by_model(name)
    if weights is None and not tags:
        raise InputError(f"open_clip has no pretrained weights for '{name}'; pass --weights FILE or random")
    tag = tag or (tags[0] if weights is None and tags else None)
    if tag is not None and tag not in tags:
        raise InputError(f"unknown weights '{tag}' for CLIP '{name}'; use one of {', '.join(tags)}")
    cfg = open_clip.get_pretrained_cfg(name, tag) if tag else {}
    # OpenAI's weights were trained with QuickGELU: a local copy of them needs the same architecture
    kwargs = {"force_quick_gelu": True} if cfg.get("quick_gelu") else {}
    try:
        with _quiet_root_logger():  # open_clip warns on the root logger when it builds random weights
            model = open_clip.create_model(name, pretrained=tag if weights is None else None, **kwargs)
    except Exception as e:
        where = f"https://huggingface.co/{cfg['hf_hub'].rstrip('/')}" if cfg.get("hf_hub") else cfg.get("url", "")
        raise InputError(
            f"cannot fetch the CLIP weights '{name}@{tag}' ({type(e).__name__}: offline?); download "
            f"open_clip_pytorch_model.bin from {where} and pass it with --weights FILE"
        ) from None
    if weights not in (None, "random"):
        load_state(model, weights)
    model.eval()
    cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
    tower = ClipImageTower(model, open_clip.get_tokenizer(name), name)
    mean = tuple(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN))
    std = tuple(cfg.get("std", open_clip.OPENAI_DATASET_STD))
    return tower, mean, std, tower.fixed_input_size
