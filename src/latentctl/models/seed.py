"""The networks of the seed projects, rebuilt layer for layer so that their checkpoints load unchanged.

latentctl grew out of the DCGAN notebooks of a GAN course (CelebA steering, conditional MNIST). People
have ``.pth`` files from them; ``latentctl models import`` turns those into model folders of these
architectures (see ``latentctl.seed_import``). They differ from ``latentctl.models.dcgan`` on purpose, and
must keep differing: the weights only mean something in exactly this network.

- The generator is a stack of transposed convolutions *with* biases and *without* padding, each followed
  by BatchNorm and ReLU, the last by tanh. Kernel 3, stride 2 grows a map from s to 2s + 1, so the sizes
  are odd until a last kernel-4 block lands on the image size: ``dcgan-64`` (the CelebA generator)
  goes 1 -> 3 -> 7 -> 15 -> 31 -> 64, ``dcgan-28`` (the MNIST generators) 1 -> 3 -> 6 -> 13 -> 28.
- A conditional generator reads the noise followed by a one-hot label, not a learned embedding.
- The classifier (``classifier-64``) is four unpadded kernel-4 convolutions with biases: 64 -> 31 -> 14
  -> 4 (stride 3) -> 1, BatchNorm and LeakyReLU(0.2) between them, one logit per attribute at the end.

Module and parameter names (``gen.0.0.weight``, ``classifier.3.0.bias``) are the seed's, so its state
dicts load without renaming. The interfaces are latentctl's: ``SeedGenerator`` is used like
``dcgan.Generator`` (noise and labels in, images in [-1, 1] out), ``SeedClassifier`` like
``classifier.AttributeClassifier`` (images in [-1, 1] in, logits out).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

GENERATOR_NAME = "seed-dcgan"  # architecture.name in config.json
CLASSIFIER_NAME = "seed-classifier"

# One (output width as a multiple of hidden_dim, 0 for the image's channels; kernel; stride) per layer
GENERATOR_LAYOUTS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "dcgan-64": ((8, 3, 2), (4, 3, 2), (2, 3, 2), (1, 3, 2), (0, 4, 2)),  # 1 -> 3 -> 7 -> 15 -> 31 -> 64
    "dcgan-28": ((4, 3, 2), (2, 4, 1), (1, 3, 2), (0, 4, 2)),  # 1 -> 3 -> 6 -> 13 -> 28
}
CLASSIFIER_LAYOUTS: dict[str, tuple[tuple[int, int, int], ...]] = {
    "classifier-64": ((1, 4, 2), (2, 4, 2), (4, 4, 3), (0, 4, 2)),  # 64 -> 31 -> 14 -> 4 -> 1; 0: the logits
}
CLASSIFIER_IMAGE_SIZES = {"classifier-64": 64}  # what the seed trained it on


def generator_output_size(layout: str) -> int:
    """Return the image side a generator layout draws from a 1x1 input."""
    size = 1
    for _, kernel, stride in GENERATOR_LAYOUTS[layout]:
        size = (size - 1) * stride + kernel
    return size


def classifier_output_size(layout: str, image_size: int) -> int:
    """Return the side of the map a classifier layout leaves of an ``image_size`` input (1 when it fits)."""
    size = image_size
    for _, kernel, stride in CLASSIFIER_LAYOUTS[layout]:
        size = (size - kernel) // stride + 1 if size >= kernel else 0
    return size


def _check_positive(config: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class SeedGeneratorConfig:
    """Everything needed to rebuild a seed generator: ``SeedGenerator(config)``."""

    layout: str = "dcgan-64"
    latent_dim: int = 64
    num_classes: int = 0  # > 0: a one-hot label follows the noise (the conditional MNIST notebook)
    image_size: int = 64  # what the layout draws; recorded so that config.json says it
    channels: int = 3
    hidden_dim: int = 64  # the seed's hidden_dim: the width of the last hidden block

    def __post_init__(self) -> None:
        if self.layout not in GENERATOR_LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(GENERATOR_LAYOUTS)}, got {self.layout!r}")
        _check_positive(self, ("latent_dim", "image_size", "channels", "hidden_dim"))
        if not isinstance(self.num_classes, int) or self.num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {self.num_classes!r}")
        if self.image_size != generator_output_size(self.layout):
            raise ValueError(f"the {self.layout} layout draws {generator_output_size(self.layout)}px images, "
                             f"not {self.image_size}px")

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def embed_dim(self) -> int:
        """The size of the label input: the one-hot vector."""
        return self.num_classes

    def to_dict(self) -> dict:
        return asdict(self)


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


class SeedGenerator(nn.Module):
    """Maps noise (N, latent_dim) and labels (N,) to images (N, C, H, W) in [-1, 1], like dcgan.Generator."""

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


@dataclass(frozen=True)
class SeedClassifierConfig:
    """Everything needed to rebuild the seed attribute classifier: ``SeedClassifier(config)``."""

    layout: str = "classifier-64"
    image_size: int = 64
    channels: int = 3
    num_attributes: int = 40
    hidden_dim: int = 64  # the seed's hidden_dim: the width of the first convolution

    def __post_init__(self) -> None:
        if self.layout not in CLASSIFIER_LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(CLASSIFIER_LAYOUTS)}, got {self.layout!r}")
        _check_positive(self, ("image_size", "channels", "num_attributes", "hidden_dim"))
        if classifier_output_size(self.layout, self.image_size) != 1:
            raise ValueError(f"the {self.layout} layout reads images whose side ends at 1 pixel (64), "
                             f"not {self.image_size}px")

    def to_dict(self) -> dict:
        return asdict(self)


class SeedClassifier(nn.Module):
    """Maps images (N, C, S, S) in [-1, 1] to attribute logits (N, num_attributes), like AttributeClassifier."""

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
