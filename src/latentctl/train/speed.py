"""How a training step runs on its device: arithmetic precision, tensor layout, compilation, the optimiser's kernel.

CUDA: bf16 autocast, channels-last, ``torch.compile``, fused Adam, cuDNN autotuning. CPU: channels-last, bf16 only
where the CPU has bf16 instructions (AVX-512 BF16 or AMX), else float32. ``--precision fp32`` is the reference
computation, bit for bit; the rest changes results only by rounding. The measurements behind each choice are in
docs/performance.md (``benchmarks/bench.py``)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from latentctl.train.options import check_precision


@dataclass(frozen=True)
class StepSettings:
    """How the training step computes; resolved from ``--precision`` and ``--compile`` for a device."""

    precision: str  # "fp32" or "bf16": the arithmetic of the forward passes; weights and Adam stay float32
    channels_last: bool
    folded_upsampling: bool
    compile: bool
    fused_adam: bool

    def describe(self) -> str:
        """A few words for the console: "bf16 autocast, channels-last, compiled", "float32 (reference)"."""
        if self.precision == "fp32" and not (self.channels_last or self.folded_upsampling):
            words = ["float32 (reference)"]
        else:
            words = ["bf16 autocast" if self.precision == "bf16" else "float32"]
            words += ["channels-last"] * self.channels_last
        return ", ".join(words + ["compiled"] * self.compile)

    def summary(self) -> dict[str, Any]:
        """What a model's training summary records of how it was trained: the precision, and the rest."""
        return {"precision": self.precision,
                "step": {"channels_last": self.channels_last, "folded_upsampling": self.folded_upsampling,
                         "compile": self.compile, "fused_adam": self.fused_adam}}


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 BF16 or AMX tiles), where bf16 autocast pays."""
    # PyTorch's own probes (the ones its CPU kernels dispatch on); older builds without them: assume not
    probes = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return any(probe is not None and probe() for probe in probes)


def auto_precision(device: torch.device) -> str:
    """What ``--precision auto`` computes in on ``device``: bf16 on CUDA and on a CPU with native bf16."""
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16()):
        return "bf16"
    return "fp32"


def resolve(precision: str, compile: bool | None, device: torch.device) -> StepSettings:
    """Return the step settings for ``precision`` (auto|fp32|bf16) and ``compile`` (None: where it pays) on
    ``device``: auto is bf16 where the device computes it in hardware (``auto_precision``), float32 elsewhere;
    fp32 is the reference computation."""
    check_precision(precision)
    cuda = device.type == "cuda"
    if precision == "fp32":
        return StepSettings("fp32", channels_last=False, folded_upsampling=False, compile=bool(compile),
                            fused_adam=False)
    return StepSettings("bf16" if precision == "bf16" else auto_precision(device),
                        channels_last=device.type in ("cuda", "cpu"), folded_upsampling=True,
                        compile=cuda if compile is None else compile, fused_adam=cuda)


def warn_if_precision_changed(saved: str | None, settings: StepSettings, warn: Callable[[str], None]) -> None:
    """Warn when a resumed run computes in another precision than it was saved with (``auto`` resolves per
    machine: bf16 where the CPU has bf16 instructions, float32 where it has none)."""
    if saved is not None and saved != settings.precision:
        warn(f"this run trained in {saved} and continues in {settings.precision} on this machine (--precision "
             "auto): results will not be bit-identical to an uninterrupted run")


def tune(device: torch.device) -> None:
    """Process-wide settings that make the step faster on ``device``: cuDNN picks the fastest convolution
    algorithm for each shape once (every step has the same shapes)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def place(module: nn.Module, device: torch.device, settings: StepSettings) -> nn.Module:
    """Move ``module`` to ``device`` in the step's layout (channels-last moves only 4-d weights)."""
    if settings.channels_last:
        return module.to(device, memory_format=torch.channels_last)
    return module.to(device)


def layout(images: torch.Tensor, settings: StepSettings) -> torch.Tensor:
    """Return a batch (N, C, H, W) in the step's layout (a copy only when it is not already)."""
    return images.contiguous(memory_format=torch.channels_last) if settings.channels_last else images


def autocast(device: torch.device, settings: StepSettings) -> AbstractContextManager:
    """The forward passes' arithmetic: bf16 autocast, or nothing (float32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=settings.precision == "bf16")


def compiled(module: nn.Module, settings: StepSettings) -> nn.Module:
    """``module`` compiled with ``torch.compile`` when the settings ask for it (its parameters stay shared).

    Where compiling fails (no working Triton or C++ compiler) the module runs as it is, with a warning:
    compilation is a speed-up, never a reason for a run to stop."""
    if not settings.compile:
        return module
    import torch._dynamo

    torch._dynamo.config.suppress_errors = True
    return torch.compile(module)  # type: ignore[return-value]


def adam(parameters: Any, settings: StepSettings, **hyper: Any) -> torch.optim.Adam:
    """Adam, with the fused kernel where the settings ask for it (the foreach one otherwise)."""
    return torch.optim.Adam(parameters, fused=True if settings.fused_adam else None, **hyper)


def match_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give restored optimiser state (read back in the default layout) its parameter's layout, so a resumed
    run steps exactly as an uninterrupted one, with the same kernels."""
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            for name, value in optimizer.state.get(parameter, {}).items():
                if isinstance(value, torch.Tensor) and value.shape == parameter.shape and value.dim() == 4:
                    optimizer.state[parameter][name] = torch.empty_like(parameter, dtype=value.dtype).copy_(value)
