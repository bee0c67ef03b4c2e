"""What the tests of `latentctl models import` share: networks that look trained, a tripwire against unpickling,
and an import that must work."""

from __future__ import annotations

import json

import torch
from torch import nn


class Tripwire:
    """An object whose unpickling would be noticed: it must never happen."""

    unpickled = False

    def __setstate__(self, state: dict) -> None:
        Tripwire.unpickled = True


def imported(cli, *args) -> dict:
    result = cli("models", "import", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def set_batchnorm(layer: nn.BatchNorm2d, generator: torch.Generator, counter: int) -> None:
    """Give ``layer`` non-trivial running statistics and affine parameters, as training would."""
    size = layer.num_features
    layer.running_mean.copy_(torch.randn(size, generator=generator) * 0.3)
    layer.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
    layer.weight.copy_(torch.rand(size, generator=generator) + 0.5)
    layer.bias.copy_(torch.randn(size, generator=generator) * 0.1)
    layer.num_batches_tracked.fill_(counter)
