"""Device selection and seeding: the one place that turns ``--device`` into a ``torch.device``."""

from __future__ import annotations

import re

from latentctl.errors import LatentctlError

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def resolve_device(spec: str = "auto"):
    """Return the ``torch.device`` for ``auto|cpu|cuda|cuda:N|mps``; ``auto`` prefers CUDA, then MPS."""
    import torch

    spec = spec.strip().lower()
    if not DEVICE_PATTERN.match(spec):
        raise LatentctlError(f"unknown device {spec!r}", hint="use auto, cpu, cuda, cuda:N or mps")
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise LatentctlError("CUDA was asked for but no CUDA device is available",
                                 hint="use --device cpu, or install a CUDA build of PyTorch")
        index = int(spec.split(":")[1]) if ":" in spec else 0
        if index >= torch.cuda.device_count():
            raise LatentctlError(f"{spec} does not exist: this machine has "
                                 f"{torch.cuda.device_count()} CUDA device(s)",
                                 hint="pick an index below the device count")
    if spec == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise LatentctlError("MPS was asked for but is not available", hint="use --device cpu")
    return torch.device(spec)

