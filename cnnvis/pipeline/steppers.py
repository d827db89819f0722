"""How one optimizer step uses the gradient: first-order optimizers take one evaluation and
one step; L-BFGS drives a closure that its line search evaluates as often as it needs.

An evaluation is ``evaluate(canvas, normalize) -> (score, regularizer loss, grad)``: the loop's
:class:`cnnvis.pipeline.gradient.CanvasGradient` on the canvas the parameterization drew.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from cnnvis.params.base import Param
from cnnvis.params.optim import optimizer_kind

Evaluate = Callable[[torch.Tensor, "bool | float"], "tuple[float, float, torch.Tensor]"]


class FirstOrder:
    """RMSProp, SGD, Adam, icnn's GD: one evaluation, then one optimizer step.

    ``normalize``: divide the objective's gradient by its mean |g| each step (see
    :class:`cnnvis.pipeline.gradient.CanvasGradient`).
    """

    exact_gradient = False  # blended tiles: no seams, and one step needs no consistent function

    def __init__(self, normalize: bool):
        self.normalize = normalize

    def begin_size(self, param: Param) -> None:
        """A new size starts (not called when a checkpoint is restored)."""

    def step(self, param: Param, evaluate: Evaluate) -> tuple[float, float]:
        score, reg, grad = evaluate(param.draw(), self.normalize)
        param.apply_gradient(grad)
        param.optimizer.step()
        param.clear_gradient()
        return score, reg

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class LBFGS:
    """A closure-driven optimizer (``stepper="closure"``: L-BFGS, one iteration per step; its
    strong-Wolfe line search re-runs every tile as often as it needs).

    L-BFGS's line search needs one fixed function, so with ``normalize`` the objective is scaled
    by a constant, 1 / mean|g| at the first evaluation of each size: regularizer weights then
    mean what they mean under the other optimizers. A non-finite trial point (a flat or
    projected objective can make the strong-Wolfe interpolation divide 0 by 0) is undone and
    L-BFGS's history restarts instead of going on in NaN.
    """

    exact_gradient = True  # the line search compares the gradient with the function's change

    def __init__(self, normalize: bool):
        self.normalize = normalize
        self.scale: float | None = None  # the fixed objective scale of the current size

    def begin_size(self, param: Param) -> None:
        # L-BFGS's curvature pairs are vectors of the old size: a new size starts a new history.
        param.optimizer.state.clear()
        self.scale = None

    def step(self, param: Param, evaluate: Evaluate) -> tuple[float, float]:
        last: dict[str, float] = {}

        def closure() -> torch.Tensor:
            param.prepare_evaluation()
            canvas = param.draw()
            norm: bool | float = False
            if self.normalize:
                if self.scale is None:
                    _, _, g = evaluate(canvas, 1.0)
                    self.scale = g.numel() / (float(torch.linalg.vector_norm(g, ord=1)) + 1e-12)
                norm = self.scale
            score, reg, grad = evaluate(canvas, norm)
            if math.isfinite(score) or "score" not in last:  # a NaN trial point is undone below
                last["score"] = score / norm if isinstance(norm, float) else score  # report the unscaled objective
                last["reg"] = reg
            param.apply_gradient(grad)
            return torch.tensor(-score + reg)

        opt = param.optimizer
        params = [p for g in opt.param_groups for p in g["params"]]
        before = [p.detach().clone() for p in params]
        opt.step(closure)
        param.clear_gradient()
        if not all(bool(torch.isfinite(p).all()) for p in params):
            with torch.no_grad():
                for p, b in zip(params, before):
                    p.copy_(b)
            opt.state.clear()
        return last["score"], last["reg"]

    def state_dict(self) -> dict:
        return {"scale": self.scale}

    def load_state_dict(self, state: dict) -> None:
        self.scale = state.get("scale")


# OptimizerKind.stepper -> how a step drives the optimizer
STEPPERS: dict[str, type] = {"first-order": FirstOrder, "closure": LBFGS}


def make_stepper(optimizer: str, normalize: bool) -> FirstOrder | LBFGS:
    """The stepping strategy of ``optimizer`` (``cfg.optimizer``), as its table entry names it."""
    return STEPPERS[optimizer_kind(optimizer).stepper](normalize)
