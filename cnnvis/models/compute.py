"""How a network's forward and backward run: the dtype (autocast), the memory format and a
compiled forward. The settings are declared in :class:`cnnvis.config.Compute`; this module
resolves them for a device and a network (bench/speed.py measured each choice).

Only the network runs in reduced precision: the canvas, the optimizer state, the objective (the
captured features are handed over as float32) and the regularizers stay float32.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from cnnvis.config import Compute
from cnnvis.errors import InputError
from cnnvis.models.fold_batchnorm import set_folds
from cnnvis.models.strided_depthwise import set_float32_strided_depthwise

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
NAMES = {v: k for k, v in DTYPES.items()}

# What a run recorded before these settings existed ran as: replaying its manifest must use it.
BEFORE_COMPUTE_SETTINGS = {
    "precision": "fp32",
    "channels_last": "off",
    "compile": False,
    "fold_batchnorm": "off",
    "fp32_strided_depthwise": "off",
}
# The probe input's side where the network takes any size (one forward, once per module).
FOLD_PROBE_SIDE = 64


def fast_bf16(device: torch.device) -> bool:
    """The device computes bfloat16 natively: CUDA with bf16, or a CPU with AVX512_BF16 or AMX
    (elsewhere oneDNN emulates bf16, slower than float32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return _cpu_has("_is_avx512_bf16_supported") or _cpu_has("_is_amx_tile_supported")
    return False


def fast_fp16(device: torch.device) -> bool:
    """The device computes float16 natively: CUDA or MPS, or a CPU with AVX512-FP16 or AMX-FP16
    (on other CPUs a float16 step measured 17x slower than float32, bench/speed.py)."""
    if device.type in ("cuda", "mps"):
        return True
    return device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_fp16_supported())


def _cpu_has(probe: str) -> bool:
    check = getattr(torch.cpu, probe, None)  # private torch probes: absent in some builds
    return bool(check()) if check is not None else False


def resolve_precision(name: str, device: torch.device) -> torch.dtype:
    """The dtype the network runs in for the setting ``name`` (auto, fp32, bf16, fp16) on
    ``device``: ``auto`` is bf16 where the device computes it natively, else float32."""
    if name == "auto":
        return torch.bfloat16 if fast_bf16(device) else torch.float32
    if name == "fp16" and not fast_fp16(device):
        raise InputError(
            f"--precision fp16: this {device.type} has no fast float16 (AVX512-FP16 or AMX-FP16); "
            "use --precision bf16 or auto"
        )
    if name == "bf16" and device.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"--precision bf16 is not available on {device.type}; use --precision fp32")
    if name not in DTYPES:
        raise InputError(f"--precision {name!r} is not one of auto, fp32, bf16, fp16")
    return DTYPES[name]


def convolutional(module: nn.Module) -> bool:
    """Most of the network's weights are 2-D convolutions (a CNN, not a transformer): the networks
    where channels-last measured faster (bench/speed.py)."""
    conv = sum(p.numel() for m in module.modules() if isinstance(m, nn.Conv2d) for p in m.parameters(False))
    total = sum(p.numel() for p in module.parameters())
    return total > 0 and conv > total / 2


def resolve_channels_last(name: str, module: nn.Module, device: torch.device) -> bool:
    """Whether the network runs channels-last for the setting ``name`` (auto, on, off): ``auto``
    is on for convolutional networks on CPU and CUDA."""
    if name == "auto":
        return device.type in ("cpu", "cuda") and convolutional(module)
    return name == "on"


@dataclass
class Execution:
    """How a network runs, resolved (:func:`execution`): autocast ``dtype`` (float32: no autocast), ``channels_last``
    memory format, ``compile`` (torch.compile the forward; its backward is compiled with it) and
    ``fold_batchnorm`` (eval-mode BatchNorm folded into the convolution before it,
    :mod:`cnnvis.models.fold_batchnorm`) and ``fp32_strided_depthwise`` (those layers out of a
    bf16 autocast, :mod:`cnnvis.models.strided_depthwise`).

    :meth:`prepare` puts the module in the memory format; :meth:`forward` runs it. A compile that
    fails falls back to the eager module and says why in :attr:`notes`; :attr:`compile_seconds`
    is the time the compiled calls spent compiling (the first call of each new tile shape).
    """

    dtype: torch.dtype = torch.float32
    channels_last: bool = False
    compile: bool = False
    fold_batchnorm: bool = False
    fp32_strided_depthwise: bool = False
    notes: list[str] = field(default_factory=list)
    compile_seconds: float = 0.0
    _compiled: object = None
    _shapes: set = field(default_factory=set)

    @property
    def precision(self) -> str:
        """fp32, bf16 or fp16."""
        return NAMES[self.dtype]

    def record(self) -> dict:
        """What a manifest records: the settings as resolved on this machine."""
        return {
            "precision": self.precision,
            "channels_last": self.channels_last,
            "compile": self.compile,
            "fold_batchnorm": self.fold_batchnorm,
            "fp32_strided_depthwise": self.fp32_strided_depthwise,
        }

    def prepare(self, module: nn.Module, keep: tuple[str, ...] = (), side: int | None = None) -> None:
        """Fold ``module``'s BatchNorms, or unfold them, keeping the convolutions named in ``keep``
        (captured layers) as they are; then put its 4-D weights in the memory format, channels-last
        or contiguous. In place; the function does not change, the order of float sums does.
        ``side``: the only input side the network takes (None: any)."""
        weight = next(module.parameters(), None)
        if weight is not None:
            size = side or FOLD_PROBE_SIDE
            probe = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(weight.device)
            set_folds(module, self.fold_batchnorm, keep, probe)
        set_float32_strided_depthwise(module, self.fp32_strided_depthwise)
        module.to(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)

    def refold(self, module: nn.Module, keep: tuple[str, ...]) -> None:
        """Before a forward: the folds and float32 layers :meth:`prepare` made, again, if another
        capture of the same module changed them since (set compares when nothing changed)."""
        set_folds(module, self.fold_batchnorm, keep)
        set_float32_strided_depthwise(module, self.fp32_strided_depthwise)

    def input(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, 3, H, W) in the memory format the network runs in."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def autocast(self, device_type: str):
        """The autocast context of the network's forward (its backward runs in the same dtypes)."""
        return torch.autocast(device_type, dtype=self.dtype, enabled=self.dtype != torch.float32)

    def forward(self, module: nn.Module, x: torch.Tensor, passthrough: tuple[type, ...] = ()) -> None:
        """Run ``module`` on ``x``, compiled where asked and possible. ``passthrough``: exceptions
        the caller's hooks raise on purpose (they end the forward, not the compiled path)."""
        if not self.compile:
            module(x)
            return
        if self._compiled is None:
            self._compiled = torch.compile(module)
        shape = tuple(x.shape)
        t0 = time.perf_counter()
        try:
            self._compiled(x)
        except passthrough:
            raise
        except Exception as e:  # noqa: BLE001 - any compiler failure falls back to the eager module
            self.compile = False
            self.notes.append(f"--compile failed ({type(e).__name__}: {str(e).splitlines()[0][:120]}); ran uncompiled")
            module(x)
            return
        finally:
            if shape not in self._shapes:
                self._shapes.add(shape)
                self.compile_seconds += time.perf_counter() - t0


def execution(settings: Compute, module: nn.Module, device: torch.device) -> Execution:
    """The :class:`Execution` of ``settings`` (a :class:`cnnvis.config.Compute`, or a
    :class:`cnnvis.config.RenderConfig`) for ``module`` on ``device``."""
    dtype = resolve_precision(settings.precision, device)
    return Execution(
        dtype=dtype,
        channels_last=resolve_channels_last(settings.channels_last, module, device),
        compile=settings.compile,
        fold_batchnorm=settings.fold_batchnorm != "off",
        fp32_strided_depthwise=resolve_fp32_strided_depthwise(settings.fp32_strided_depthwise, dtype, device),
    )


def resolve_fp32_strided_depthwise(name: str, dtype: torch.dtype, device: torch.device) -> bool:
    """Whether stride-2 depthwise convolutions leave a bf16 autocast for the setting ``name``
    (auto, on, off): ``auto`` is on for bf16 on a CPU, where oneDNN's bf16 kernels for them are
    slow; elsewhere the switch would change nothing measured."""
    if name == "auto":
        return dtype == torch.bfloat16 and device.type == "cpu"
    return name == "on"
