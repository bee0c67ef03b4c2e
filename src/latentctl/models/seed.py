"""The networks of the seed projects, rebuilt layer for layer so that their checkpoints load unchanged.

``latentctl models import`` (latentctl.seed_import) turns the seed notebooks' ``.pth`` files into model
folders of these architectures. They differ from models.dcgan on purpose, and must keep differing: the
weights only mean something in exactly this network (unpadded layers with biases, one-hot labels; the
layouts are in models.configs and docs/models.md). Module and parameter names (``gen.0.0.weight``) are
the seed's, so its state dicts load without renaming; the interfaces are latentctl's: ``SeedGenerator``
is used like ``dcgan.Generator``, ``SeedClassifier`` like ``classifier.AttributeClassifier``.
"""

from __future__ import annotations

import torch
from torch import nn

from latentctl.models.configs import (
    CLASSIFIER_LAYOUTS,
    GENERATOR_LAYOUTS,
    SeedClassifierConfig,
    SeedGeneratorConfig,
    register,
)
from latentctl.models.dcgan import first_layer_matrix


class OneHot(nn.Module):
    """A fixed label embedding: label i -> the i-th unit vector (N, num_classes), as the seed fed labels.

    ``weight`` is the identity, so blending two rows blends two labels (``latentctl interpolate
    --to-digit``); it is not saved, there is nothing to learn.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.eye(num_classes), persistent=False)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        return self.weight[labels]


@register
class SeedGenerator(nn.Module):
    """Maps noise (N, latent_dim) and labels (N,) to images (N, C, H, W) in [-1, 1], like dcgan.Generator."""

    config_class = SeedGeneratorConfig

    def __init__(self, config: SeedGeneratorConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = OneHot(config.num_classes) if config.conditional else None
        layout = GENERATOR_LAYOUTS[config.layout]
        width_in = config.latent_dim + config.num_classes
        blocks: list[nn.Module] = []
        for index, (factor, kernel, stride) in enumerate(layout):
            width_out = config.hidden_dim * factor if factor else config.channels
            convolution = nn.ConvTranspose2d(width_in, width_out, kernel, stride)
            if index == len(layout) - 1:
                blocks.append(nn.Sequential(convolution, nn.Tanh()))
            else:
                blocks.append(nn.Sequential(convolution, nn.BatchNorm2d(width_out), nn.ReLU()))
            width_in = width_out
        self.gen = nn.Sequential(*blocks)

    def latent_matrix(self) -> torch.Tensor:
        """The linear map (C * S * S, latent_dim) from the noise to the first block's BatchNorm output, its
        scale folded in (see ``dcgan.first_layer_matrix``)."""
        return first_layer_matrix(self.gen[0][0], self.gen[0][1], self.config.latent_dim)

    def first_features(self, noise: torch.Tensor, embedding: torch.Tensor | None = None) -> torch.Tensor:
        """The first block's output (N, C * S * S), after its BatchNorm and ReLU, for noise (N, latent_dim)
        and one-hot labels (N, num_classes) when the generator takes them."""
        inputs = noise if embedding is None else torch.cat([noise, embedding.to(noise.dtype)], dim=1)
        return self.gen[0](inputs[:, :, None, None]).flatten(1)

    def label_embedding(self, labels: torch.Tensor) -> torch.Tensor:
        """Return the one-hot vectors (N, num_classes) of integer labels (N,)."""
        if self.embed is None:
            raise ValueError("an unconditional generator has no label embedding")
        return self.embed(labels)

    def synthesize(self, noise: torch.Tensor, embedding: torch.Tensor | None = None) -> torch.Tensor:
        """Generate from noise and an already embedded label (which may be a blend of two labels)."""
        inputs = noise if embedding is None else torch.cat([noise, embedding.to(noise.dtype)], dim=1)
        return self.gen(inputs[:, :, None, None])

    def forward(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is None:
            return self.synthesize(noise)
        if labels is None:
            raise ValueError("a conditional generator needs labels")
        return self.synthesize(noise, self.embed(labels))


@register
class SeedClassifier(nn.Module):
    """Maps images (N, C, S, S) in [-1, 1] to attribute logits (N, num_attributes), like AttributeClassifier."""

    config_class = SeedClassifierConfig

    def __init__(self, config: SeedClassifierConfig) -> None:
        super().__init__()
        self.config = config
        layout = CLASSIFIER_LAYOUTS[config.layout]
        width_in = config.channels
        blocks: list[nn.Module] = []
        for index, (factor, kernel, stride) in enumerate(layout):
            width_out = config.hidden_dim * factor if factor else config.num_attributes
            convolution = nn.Conv2d(width_in, width_out, kernel, stride)
            if index == len(layout) - 1:
                blocks.append(nn.Sequential(convolution))
            else:
                # not in place (the seed's was): steering differentiates through this, never mind the memory
                blocks.append(nn.Sequential(convolution, nn.BatchNorm2d(width_out), nn.LeakyReLU(0.2)))
            width_in = width_out
        self.classifier = nn.Sequential(*blocks)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(images).flatten(1)  # (N, A, 1, 1) -> (N, A)
