"""Feature losses for inversion: distance between activations and target activations.

Every loss takes a batch of activations ``f`` (B, ...) and one target ``t`` (1, ...) or (B, ...)
of the same trailing shape, plus an optional mask broadcastable to ``f``, and returns one value
per batch item, shape (B,). Masked-out entries do not count. Forms (icnn / bdpy names):

- ``l2``: ``sum(m * (f - t)**2)`` (Mahendran & Vedaldi 2015, eq. 1, without the normalization,
  which the per-layer weight supplies).
- ``l1``: ``sum(m * |f - t|)``.
- ``inner``: ``-sum(m * f * t)``, the negative inner product (minimize to align).
- ``gram``: ``sum((G(f) - G(t))**2)`` with ``G = F F^T / N`` over the N masked positions of
  each channel (Gatys et al. 2016): matches texture statistics, not layout.
- ``corr``: ``1 - pearson(m * f, m * t)``, invariant to the scale and offset of the features.
"""

from __future__ import annotations

import torch

from cnnvis.defaults import FEATURE_LOSSES
from cnnvis.errors import InputError

LOSSES = FEATURE_LOSSES  # declared once, beside the other choice lists (no torch: --help reads it)


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1)


def _gram(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(B, C, ...) -> (B, C, C): channel co-activations averaged over the (masked) positions."""
    b, c = x.shape[:2]
    if mask is None:
        f = x.reshape(b, c, -1)
        return f @ f.transpose(1, 2) / f.shape[-1]
    m = mask.to(x).expand_as(x)
    f = (x * m).reshape(b, c, -1)
    n = m[:, :1].reshape(b, -1).sum(1).clamp_min(1).view(b, 1, 1)
    return f @ f.transpose(1, 2) / n


def feature_loss(f: torch.Tensor, t: torch.Tensor, kind: str = "l2", mask: torch.Tensor | None = None) -> torch.Tensor:
    """Loss of each item of ``f`` (B, ...) against target ``t`` (1 or B, ...); returns (B,).

    ``mask`` (broadcastable to ``f``, 0/1 or soft weights) selects the entries that count.
    """
    if kind not in LOSSES:
        raise InputError(f"unknown loss '{kind}'; use one of {', '.join(LOSSES)}")
    t = t.to(f).expand_as(f)
    if kind == "gram":
        if f.dim() < 3:
            raise InputError(
                f"the gram loss needs spatial features (B, C, H, W), got shape {tuple(f.shape)}; use l2 or corr"
            )
        return (_gram(f, mask) - _gram(t, mask)).pow(2).flatten(1).sum(1)
    m = None if mask is None else mask.to(f).expand_as(f)
    if kind == "l2":
        d = (f - t).pow(2)
    elif kind == "l1":
        d = (f - t).abs()
    elif kind == "inner":
        d = -(f * t)
    else:  # corr
        return 1 - _masked_pearson(f, t, m)
    return _flat(d if m is None else d * m).sum(1)


def _masked_pearson(f: torch.Tensor, t: torch.Tensor, m: torch.Tensor | None) -> torch.Tensor:
    f, t = _flat(f), _flat(t)
    w = torch.ones_like(f) if m is None else _flat(m)
    n = w.sum(1, keepdim=True).clamp_min(1e-12)
    fc = f - (w * f).sum(1, keepdim=True) / n
    tc = t - (w * t).sum(1, keepdim=True) / n
    num = (w * fc * tc).sum(1)
    den = ((w * fc * fc).sum(1) * (w * tc * tc).sum(1)).clamp_min(1e-24).sqrt()
    return num / den


def _norms64(t: torch.Tensor, kind: str, mask: torch.Tensor | None) -> torch.Tensor:
    """(B,) float64 squared norms of what the loss compares for each item of ``t``."""
    if kind == "gram":
        v = _gram(t, None if mask is None else mask.to(t))
    else:
        v = t if mask is None else t * mask.to(t)
    return _flat(v.double().pow(2)).sum(1)


def target_norms(t: torch.Tensor, kind: str = "l2", mask: torch.Tensor | None = None) -> torch.Tensor:
    """``||t_i||^2`` of what the loss compares (the Gram matrix for ``gram``), masked, for every
    item of the batch ``t`` (B, ...): shape (B,) in ``t``'s dtype, summed in float64."""
    return _norms64(t, kind, mask).to(t.dtype)


def target_norm(t: torch.Tensor, kind: str = "l2", mask: torch.Tensor | None = None) -> float:
    """``||t||^2`` of what the loss compares (the Gram matrix for ``gram``), masked.

    icnn's default layer weight is its inverse, so every layer's loss is a relative error.
    """
    return float(_norms64(t, kind, mask).sum())
