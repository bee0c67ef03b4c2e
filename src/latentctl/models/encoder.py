"""The latent encoder: a face image (N, C, S, S) in [-1, 1] to the latent (N, latent_dim) a generator would
draw it from, for ``invert``'s first guess (in the spirit of encoder4editing and ReStyle, which train an
encoder to land where optimisation then refines).

Its body is the DCGAN discriminator's (models.dcgan): stride-2 4x4 convolutions, BatchNorm after the first,
LeakyReLU(0.2), down to the base size, then one linear layer to the latent instead of a real/fake logit."""

from __future__ import annotations

import torch
from torch import nn

from latentctl.models.configs import EncoderConfig, base_size, register
from latentctl.models.dcgan import init_weights


@register
class LatentEncoder(nn.Module):
    """Maps images (N, C, S, S) in [-1, 1] to latents (N, latent_dim)."""

    config_class = EncoderConfig

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        start, doublings = base_size(config.image_size)
        widths = [config.width * 2**i for i in range(doublings)]
        blocks: list[nn.Module] = [nn.Conv2d(config.channels, widths[0], 4, 2, 1, bias=False),
                                   nn.LeakyReLU(0.2, inplace=True)]
        for width_in, width_out in zip(widths, widths[1:], strict=False):  # each halves the resolution
            blocks += [nn.Conv2d(width_in, width_out, 4, 2, 1, bias=False), nn.BatchNorm2d(width_out),
                       nn.LeakyReLU(0.2, inplace=True)]
        self.features = nn.Sequential(*blocks)  # -> (N, widths[-1], start, start)
        self.head = nn.Linear(widths[-1] * start * start, config.latent_dim)
        self.apply(init_weights)
        nn.init.normal_(self.head.weight, 0.0, 1.0 / (widths[-1] * start * start) ** 0.5)  # unit-scale latents

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images).flatten(1))
