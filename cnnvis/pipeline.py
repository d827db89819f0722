"""The multiscale tiled optimization loop. Reports progress to a callback; never prints or writes.

``cnnvis.render`` runs it. The module is not named ``render`` so that the function and the
module can never shadow each other as attributes of the package.

For each size of the plan, for each step: shift the tile grid, accumulate the objective's
gradient tile by tile into one canvas-sized buffer, add the regularizers' gradients (strip by
strip), take one optimizer step on the whole canvas. Between sizes the canvas and the
optimizer state are resized in float. Memory: one batch of tiles' activations plus a few
canvas-sized buffers (canvas, gradient, optimizer state, optional reference image).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .capture import FeatureCapture
from .config import RenderConfig
from .dgn import DGNPrior, GeneratorImage, initial_latent
from .errors import InputError
from .models import LoadedModel
from .objectives import Capture, Objective
from .octaves import Size, check_plan, resize, size_plan
from . import pixelops
from .optim import CanvasOptimizer, lr_at, make_optimizer, set_hyper
from .param import FourierImage
from .regularizers import TV, PNorm, gaussian_blur_, regularizer_gradient
from .tiling import Window, layout, tiled_gradient
from .transforms import jitter_roll, random_affine


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; otherwise the named device, checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device '{name}'; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device '{name}' is not available (no CUDA GPU found); use --device cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device '{name}' is not available (no Apple MPS); use --device cpu")
    return dev


@dataclass(frozen=True)
class Progress:
    """One finished step. ``step`` counts from 1 over the whole run; ``size_step`` within a size."""

    step: int
    total: int
    size_index: int
    num_sizes: int
    size: Size
    size_step: int
    steps_per_size: int
    score: float
    reg_loss: float
    lr: float
    render: Render

    def image(self) -> torch.Tensor:
        """The current canvas, (1, 3, H, W) float, a detached copy."""
        return self.render.image()


class Render:
    """One run of the pipeline. Build it, then call :meth:`run`; :meth:`image` is the live canvas.

    Args:
        model: the network and its preprocessing.
        objective: what to maximize (its ``.layers`` are hooked). An objective with a
            ``reference`` image (1, 3, H, W) gets, for every tile, the reference's activations
            over the same window and under the same transforms as ``Capture.targets``.
        cfg: every setting; see :class:`RenderConfig`.
        init: (1, 3, H, W) RGB in [0, 1] to start from (sizes relative to it), or ``None`` for noise
            (sizes relative to the model input).
        device: where tiles are computed and the canvas lives.
        size: (H, W) base size for a noise start instead of the model input.
        mask: (1, 1, H, W) in [0, 1] over the base size: only masked pixels change (cnnpref's image
            mask); resized with the canvas.
        prior: a deep generator network prior: the sizes up to its ``side_limit()`` optimize the
            generator's latent instead of pixels (see :mod:`cnnvis.dgn`).
    """

    def __init__(self, model: LoadedModel, objective: Objective, cfg: RenderConfig, init: torch.Tensor | None = None, device: torch.device | str = "cpu", size: Size | None = None, mask: torch.Tensor | None = None, prior: DGNPrior | None = None):
        self.model, self.objective, self.cfg, self.prior = model, objective, cfg, prior
        self.device = torch.device(device)
        self.model.to(self.device)
        self.init = None if init is None else init.to(self.device, torch.float32)
        self.from_image = init is not None
        if init is not None:
            base = tuple(init.shape[-2:])
        else:
            base = tuple(size) if size is not None else (model.input_size, model.input_size)
        self.plan: list[Size] = size_plan(base, cfg.initial_size, cfg.final_size, cfg.num_sizes, cfg.size_spacing, cfg.octaves, cfg.octave_scale)
        check_plan(self.plan, model.min_size, model.name)
        self.tile = cfg.tile or model.input_size
        if self.tile < model.min_size:
            raise InputError(f"--tile {self.tile} is below the minimum input {model.min_size} of {model.name}; use --tile {model.min_size} or more")
        self.overlap = self.tile // 4 if cfg.overlap is None else cfg.overlap
        if self.overlap >= self.tile:
            raise InputError(f"--overlap {self.overlap} must be smaller than the tile ({self.tile}); e.g. --overlap {self.tile // 4}")
        self.reference = getattr(objective, "reference", None)
        if self.reference is not None:
            self.reference = self.reference.to(self.device, torch.float32)
        self.mask = None if mask is None else mask.to(self.device, torch.float32)
        self.gen = torch.Generator().manual_seed(cfg.seed)
        if prior is not None:
            prior.generator.to(self.device)
        self.capture = FeatureCapture(model.module, objective.layers, model_name=model.name)
        self.canvas: torch.Tensor | None = None
        self.size_index = 0
        self._ref = self._mask = None
        self._state: _State | None = None
        self._z0: torch.Tensor | None = None  # the prior's first latent, made at the start of run()
        self._steps_done = self._done = 0  # steps finished in the current size, and in all
        self._tgen = torch.Generator()
        with self.capture:
            # Fail on bad indices or sizes now, before any output or progress bar: one probe
            # per distinct tile shape.
            for size_ in dict.fromkeys((min(self.tile, h), min(self.tile, w)) for h, w in self.plan):
                self._probe(size_)

    # ------------------------------------------------------------------ pieces
    def image(self) -> torch.Tensor:
        if self.canvas is None:
            raise RuntimeError("render has not started")
        return self.canvas.detach().clone()

    @property
    def param(self) -> FourierImage | GeneratorImage | None:
        """The current image parameterization (``None`` while pixels are optimized directly)."""
        return None if self._state is None else self._state.param

    def latent(self) -> torch.Tensor | None:
        """The generator's current latent (1, *shape), a detached copy, at DGN sizes; else ``None``."""
        p = self.param
        return p.z.detach().clone() if isinstance(p, GeneratorImage) else None

    def _initial_canvas(self, size: Size, start: torch.Tensor | None = None) -> torch.Tensor:
        """``start`` (or else the init image) resized to ``size``, or seeded noise."""
        if start is not None:
            return resize(start, size)
        if self.init is not None:
            return resize(self.init, size)
        h, w = size
        # Filled band by band, in place: at 8K a canvas is 0.8 GB and a temporary would double the peak.
        x = torch.empty(1, 3, h, w)
        for a in range(0, h, 256):
            x[:, :, a:a + 256].normal_(generator=self.gen)
        x.mul_(self.cfg.init_scale).add_(torch.tensor(self.model.mean).view(1, 3, 1, 1))
        gaussian_blur_(x, self.cfg.init_blur)
        return x.to(self.device)

    def _p_target(self) -> str:
        """Where the p-norm pulls: ``auto`` means toward the init image when there is one."""
        if self.cfg.p_target != "auto":
            return self.cfg.p_target
        return "init" if self.from_image else "zero"

    def _regularizers(self, step: int) -> list:
        c = self.cfg
        target = self._p_target()
        tv_w = c.tv_weight + c.tv_step * (step // c.tv_step_every if c.tv_step_every else 0)
        return [
            TV(tv_w, c.tv_beta, c.tv_operator, c.tv_scale),
            PNorm(c.p_weight, c.p_alpha, c.p_scale, target, self.model.mean),
            PNorm(c.aux_p_weight, c.aux_p_alpha, c.aux_p_scale, "zero", self.model.mean),
        ]

    def _transform(self, x: torch.Tensor) -> torch.Tensor:
        x = jitter_roll(x, self.cfg.jitter, self._tgen)
        return random_affine(x, self.cfg.transform_scale, self.cfg.transform_rotate, self._tgen)

    def _score(self, tiles: torch.Tensor, windows: Sequence[Window]) -> torch.Tensor:
        b = tiles.shape[0]
        x = tiles
        if self._ref is not None:
            # The reference crops ride in the same batch, so they get the same transform.
            x = torch.cat([tiles] + [self._ref[:, :, w.y0:w.y1, w.x0:w.x1] for w in windows])
        feats = self.capture(self.model.normalize(self._transform(x)))
        targets = None
        if self._ref is not None:
            targets = {k: v[b:].detach() for k, v in feats.items()}
            feats = {k: v[:b] for k, v in feats.items()}
        return self.objective(Capture(tiles, feats, windows, tuple(self.canvas.shape[-2:]), targets))

    def _probe(self, size: Size) -> None:
        """One forward pass on a tile: catches sizes the network cannot take and bad indices."""
        th, tw = min(self.tile, size[0]), min(self.tile, size[1])
        x = torch.full((1, 3, th, tw), 0.5, device=self.device)
        try:
            with torch.no_grad():
                feats = self.capture(self.model.normalize(x))
        except RuntimeError as e:
            raise InputError(f"{self.model.name} cannot take a {th}x{tw} tile ({str(e).splitlines()[0][:100]}); use a larger --tile or size") from None
        self.objective.check(feats)

    # ------------------------------------------------------------------ state per size
    def _uses_prior(self, si: int, size: Size) -> bool:
        """Whether size ``si`` optimizes the generator's latent (always the first size)."""
        return self.prior is not None and (si == 0 or max(size) <= self.prior.side_limit())

    def _start(self, size: Size, prev: _State | None, si: int = 0) -> _State:
        """The parameterization and optimizer at ``size``, carried over from ``prev``."""
        cfg = self.cfg
        if self._uses_prior(si, size):
            if prev is None:
                gimg = GeneratorImage(self.prior, size, self._z0)
                self._z0 = None
            else:
                gimg = prev.param.resized(size)
            # A new latent per size (its shape may change): its optimizer starts afresh.
            return _State(gimg.image().detach(), make_optimizer(gimg.parameters(), cfg), param=gimg)
        start = None
        if isinstance(getattr(prev, "param", None), GeneratorImage):
            # Past the generator's sizes: refine its image in pixel space (see cnnvis.dgn).
            start, prev = prev.canvas.detach(), None
        if cfg.param == "fft":
            if prev is not None:
                fimg = prev.param.resized(size)
            else:
                first = start if start is not None else self.init
                fimg = FourierImage(size, None if first is None else resize(first, size), cfg.fft_decay, gen=self.gen, device=self.device)
            # A new spectrum per size: its optimizer state has another shape and starts afresh.
            return _State(fimg.image().detach(), make_optimizer(fimg.parameters(), cfg), param=fimg)
        if cfg.optimizer == "lbfgs":
            canvas = self._initial_canvas(size, start) if prev is None else resize(prev.canvas.detach(), size)
            canvas.requires_grad_(True)
            # L-BFGS's curvature pairs are vectors of the old size: a new size starts a new history.
            return _State(canvas, make_optimizer([canvas], cfg))
        opt = CanvasOptimizer(self._initial_canvas(size, start), cfg) if prev is None else prev.bands.resized(size)
        return _State(opt.canvas, opt.opt, bands=opt)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self) -> dict:
        """The run's state after the last finished step, enough to finish it bit for bit with
        ``run(resume=...)`` on a Render built from the same arguments: the position in the plan,
        the canvas or parameterization, the optimizer state and the random generator's state.
        Tensors are referenced, not copied: save it before the next step."""
        st = self._state
        if st is None:
            raise RuntimeError("render has not started")
        param = None
        if isinstance(st.param, GeneratorImage):
            param = st.param.z.detach()
        elif st.param is not None:
            param = st.param.spectrum.detach()
        return {"size_index": self.size_index, "steps_done": self._steps_done, "done": self._done, "gen": self.gen.get_state(),
                "canvas": None if st.param is not None else st.canvas.detach(), "param": param, "opt": st.opt.state_dict(),
                "scale": st.scale, "plan": [list(s) for s in self.plan]}

    def _restore(self, size: Size, si: int, ck: dict) -> _State:
        """The state at size ``si`` from :meth:`checkpoint`'s dict."""
        cfg = self.cfg
        if self._uses_prior(si, size):
            p = GeneratorImage(self.prior, size, ck["param"].to(self.device))
            st = _State(p.image().detach(), make_optimizer(p.parameters(), cfg), param=p)
        elif cfg.param == "fft":
            p = FourierImage(size, None, cfg.fft_decay, gen=torch.Generator(), device=self.device)
            p.spectrum = ck["param"].to(self.device).clone().requires_grad_(True)
            st = _State(p.image().detach(), make_optimizer(p.parameters(), cfg), param=p)
        elif cfg.optimizer == "lbfgs":
            canvas = ck["canvas"].to(self.device).clone().requires_grad_(True)
            st = _State(canvas, make_optimizer([canvas], cfg))
        else:
            bands = CanvasOptimizer(ck["canvas"].to(self.device).clone(), cfg)
            st = _State(bands.canvas, bands.opt, bands=bands)
        st.opt.load_state_dict(ck["opt"])
        st.scale = ck.get("scale")
        return st

    # ------------------------------------------------------------------ loop
    def run(self, callback: Callable[[Progress], None] | None = None, resume: dict | None = None) -> torch.Tensor:
        """Optimize through every size; return the final canvas (1, 3, H, W) float (unclipped).

        ``resume``: a :meth:`checkpoint` dict of a run with the same arguments; the run goes on
        from there and ends with the same canvas, bit for bit, as if never interrupted.
        """
        cfg = self.cfg
        total = len(self.plan) * cfg.steps
        done = 0
        state = None
        first, t0 = 0, 0
        if resume is not None:
            if [list(s) for s in self.plan] != resume.get("plan"):
                raise InputError(f"the checkpoint's size plan {resume.get('plan')} is not this run's {[list(s) for s in self.plan]}; resume it with the command that made it")
            first, t0, done = int(resume["size_index"]), int(resume["steps_done"]), int(resume["done"])
            self.gen.set_state(resume["gen"])
        elif self.prior is not None:
            # Encoded before the objective's hooks go in: they stop the forward pass at the
            # objective's deepest layer, which may come before the generator's encoder layer.
            self._z0 = initial_latent(self.prior, self.plan[0], self.model, self.init, self.gen, self.device)
        with self.capture:
            for si, size in enumerate(self.plan):
                if si < first:
                    continue
                if resume is not None and si == first:
                    state = self._restore(size, si, resume)
                else:
                    state = self._start(size, state, si)
                    t0 = 0
                self._state = state
                if si == first and not (cfg.p_weight > 0 and self._p_target() == "init"):
                    self.init = None  # only the p-norm toward the image needs it later: free it now
                self.canvas, self.size_index = state.canvas, si
                ref = None if self.init is None else resize(self.init, size)
                self._ref = None if self.reference is None else resize(self.reference, size)
                self._mask = None if self.mask is None else resize(self.mask, size).clamp_(0, 1)
                grad = torch.zeros_like(state.canvas)
                self._steps_done, self._done = t0, done
                for t in range(t0, cfg.steps):
                    score, reg_loss, lr = self._step(state, grad, ref, t)
                    done += 1
                    self._steps_done, self._done = t + 1, done
                    if callback is not None:
                        callback(Progress(done, total, si, len(self.plan), size, t + 1, cfg.steps, score, reg_loss, lr, self))
                del grad, ref
        self._ref = self._mask = None
        return self.canvas.detach()

    def _image_gradient(self, canvas: torch.Tensor, grad: torch.Tensor, ref, t: int, offset: tuple[int, int], seed: int, normalize: bool | float) -> tuple[float, float]:
        """Fill ``grad`` with d(loss)/d(canvas), loss = -score + regularizers; return (score, reg loss).

        ``normalize``: True divides the objective's gradient by its mean |g| (a new factor every
        call); a number multiplies the objective (score and gradient) by that fixed factor.
        """
        h, w = canvas.shape[-2:]
        self._tgen.manual_seed(seed)  # the same transforms however often L-BFGS re-evaluates
        tiles = layout(h, w, self.tile, self.overlap, offset, device=self.device)
        grad.zero_()
        score = tiled_gradient(canvas.detach(), tiles, self._score, self.cfg.batch_size, grad)
        grad.neg_()  # the optimizer minimizes -score + regularizers
        if normalize is True:
            # Google's deepdream and icnn divide the step by mean |g|: the objective's scale then
            # no longer depends on the layer or model, and regularizer weights keep a meaning.
            grad.div_(float(torch.linalg.vector_norm(grad, ord=1)) / grad.numel() + 1e-12)
        elif normalize is not False:
            grad.mul_(normalize)
            score *= normalize
        reg_loss = regularizer_gradient(canvas.detach(), self._regularizers(t), grad, ref)
        if self._mask is not None:
            grad.mul_(self._mask)
        return score, reg_loss

    def _step(self, st: _State, grad: torch.Tensor, ref, t: int) -> tuple[float, float, float]:
        cfg = self.cfg
        frac = t / max(1, cfg.steps - 1)
        lr = lr_at(cfg, t)
        if isinstance(st.param, GeneratorImage) and cfg.latent_lr is not None:
            lr *= cfg.latent_lr / cfg.lr  # the latent has its own units; the schedule's shape stays
        set_hyper(st.opt, lr, cfg.scheduled("momentum", frac))
        h, w = st.canvas.shape[-2:]
        stride = max(1, min(self.tile, h, w) - self.overlap)
        offset = tuple(int(v) for v in torch.randint(0, stride, (2,), generator=self.gen)) if cfg.shift else (0, 0)
        seed = int(torch.randint(0, 2**62, (1,), generator=self.gen))
        if st.param is None and cfg.optimizer != "lbfgs":
            score, reg_loss = self._image_gradient(st.canvas, grad, ref, t, offset, seed, cfg.normalize_grad)
            st.bands.step(grad)
        else:
            score, reg_loss = self._step_whole(st, grad, ref, t, offset, seed)
        if st.param is None:
            self._pixel_ops(st.canvas, grad, t, frac)
        return score, reg_loss, lr

    def _step_whole(self, st: _State, grad, ref, t, offset, seed) -> tuple[float, float]:
        """One step of an optimizer over a whole parameter (Fourier spectrum, or L-BFGS pixels)."""
        cfg = self.cfg
        lbfgs = cfg.optimizer == "lbfgs"
        last = {}

        def closure():
            st.opt.zero_grad()
            if st.param is not None:
                img = st.param.image()
                canvas = img.detach()
            else:
                if cfg.clamp_pixels:
                    with torch.no_grad():
                        st.canvas.clamp_(0, 1)  # projected L-BFGS: every evaluation in range
                img = canvas = st.canvas
            self.canvas = canvas
            norm = cfg.normalize_grad
            if lbfgs and cfg.normalize_grad:
                # L-BFGS's line search needs one fixed function: scale the objective by a constant,
                # 1 / mean|g| at the first evaluation of the size, so that regularizer weights mean
                # what they mean under the other optimizers.
                if st.scale is None:
                    self._image_gradient(canvas, grad, ref, t, offset, seed, 1.0)
                    st.scale = grad.numel() / (float(torch.linalg.vector_norm(grad, ord=1)) + 1e-12)
                norm = st.scale
            score, reg = self._image_gradient(canvas, grad, ref, t, offset, seed, norm)
            if math.isfinite(score) or "score" not in last:  # a NaN trial point is undone below
                last["score"] = score / norm if isinstance(norm, float) else score  # report the unscaled objective
                last["reg"] = reg
            if st.param is not None:
                img.backward(grad)
            else:
                st.canvas.grad = grad.clone()
            return torch.tensor(-score + reg)

        if lbfgs:
            params = [p for g in st.opt.param_groups for p in g["params"]]
            before = [p.detach().clone() for p in params]
            st.opt.step(closure)
            if not all(bool(torch.isfinite(p).all()) for p in params):
                # A flat or projected objective can make the strong-Wolfe interpolation divide
                # 0 by 0: undo the step and restart L-BFGS's history instead of going on in NaN.
                with torch.no_grad():
                    for p, b in zip(params, before):
                        p.copy_(b)
                st.opt.state.clear()
            del before
        else:
            closure()
            st.opt.step()
        if st.param is not None:
            if hasattr(st.param, "project_"):
                st.param.project_()  # latent bounds (icnn): after every step, L-BFGS's too
            with torch.no_grad():
                st.canvas = self.canvas = st.param.image()
        return last["score"], last["reg"]

    @torch.no_grad()
    def _pixel_ops(self, canvas: torch.Tensor, grad: torch.Tensor, t: int, frac: float) -> None:
        """icnn's per-step pixel operations, in its order: decay, clip, blur."""
        cfg, mean = self.cfg, self.model.mean
        pixelops.decay_(canvas, cfg.scheduled("pixel_decay", frac), mean)
        if cfg.clamp_pixels:
            canvas.clamp_(0, 1)
        for name, fn in (("clip_extreme", lambda p: pixelops.clip_extreme_(canvas, p)),
                         ("clip_small_norm", lambda p: pixelops.clip_small_norm_(canvas, p, mean)),
                         ("clip_small_contrib", lambda p: pixelops.clip_small_contrib_(canvas, grad, p, mean))):
            every = getattr(cfg, name + "_every")
            if getattr(cfg, name) and every and (t + 1) % every == 0:
                fn(cfg.scheduled(name, frac))
        if cfg.blur_every and (t + 1) % cfg.blur_every == 0:
            gaussian_blur_(canvas, cfg.scheduled("blur_sigma", frac))
        if self._mask is not None:
            # outside the image mask the canvas stays at the model's mean colour
            m = torch.tensor(mean, dtype=canvas.dtype, device=canvas.device).view(1, 3, 1, 1)
            canvas.sub_(m).mul_(self._mask).add_(m)


@dataclass
class _State:
    """The optimized canvas at one size: ``canvas`` (1, 3, H, W), the torch optimizer, and either
    the band optimizer (pixel param) or the image parameterization (Fourier or generator)."""

    canvas: torch.Tensor
    opt: torch.optim.Optimizer
    bands: CanvasOptimizer | None = None
    param: FourierImage | GeneratorImage | None = None
    scale: float | None = None  # L-BFGS's fixed objective scale at this size


def render(model: LoadedModel, objective: Objective, cfg: RenderConfig | None = None, init: torch.Tensor | None = None, device: torch.device | str = "cpu", callback: Callable[[Progress], None] | None = None, size: Size | None = None, mask: torch.Tensor | None = None, prior: DGNPrior | None = None) -> torch.Tensor:
    """Run the pipeline once; see :class:`Render`. Returns the final canvas (1, 3, H, W)."""
    return Render(model, objective, cfg or RenderConfig(), init, device, size, mask, prior).run(callback)
