"""The generator of pytorch/examples' ``dcgan/main.py``, rebuilt layer for layer so its ``netG_epoch_N.pth`` loads.

``latentctl models import FILE --kind gan --arch pytorch-dcgan`` (latentctl.seed_import) writes those state
dicts as model folders of this architecture. The module is one ``nn.Sequential`` named ``main``, as there, so
the tensors keep their names (``main.0.weight``, ``main.1.running_mean``, ..., ``main.12.weight``); the
interface is latentctl's: noise (N, latent_dim), as ``dcgan.Generator`` takes it, not (N, nz, 1, 1).
"""

from __future__ import annotations

import torch
from torch import nn

from latentctl.models.configs import PytorchDCGANConfig, register

# (output width as a multiple of ngf, 0 for the image's channels; stride; padding): kernel 4, no biases
LAYERS = ((8, 1, 0), (4, 2, 1), (2, 2, 1), (1, 2, 1), (0, 2, 1))  # 1 -> 4 -> 8 -> 16 -> 32 -> 64


@register
class PytorchDCGANGenerator(nn.Module):
    """Maps noise (N, latent_dim) to images (N, C, 64, 64) in [-1, 1], like dcgan.Generator."""

    config_class = PytorchDCGANConfig

    def __init__(self, config: PytorchDCGANConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width_in = config.latent_dim
        for factor, stride, padding in LAYERS:
            width_out = config.gen_width * factor if factor else config.channels
            layers.append(nn.ConvTranspose2d(width_in, width_out, 4, stride, padding, bias=False))
            # ReLU not in place (pytorch/examples' is): steering differentiates through it
            layers += [nn.BatchNorm2d(width_out), nn.ReLU()] if factor else [nn.Tanh()]
            width_in = width_out
        self.main = nn.Sequential(*layers)

    def forward(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is not None:
            raise ValueError("pytorch/examples' DCGAN generator is unconditional: it takes no labels")
        return self.main(noise.reshape(noise.shape[0], self.config.latent_dim, 1, 1))  # (N, D) or (N, D, 1, 1)
