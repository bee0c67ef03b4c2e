"""DCGAN generator and discriminator, optionally conditioned on a class label or on binary attributes.

The blocks and initialisation are Radford et al.'s (2016) and pytorch/examples' ``dcgan``, for any image
size ``s * 2**k`` with ``4 <= s <= 7`` (28 for digits, 64 for faces). Conditioning follows Mirza &
Osindero (label embedding into the generator) and Miyato & Koyama (label plane and projection in the
discriminator); faces use nearest upsampling instead of transposed convolutions. Why each choice, and
what it measured: docs/training-cgan.md and docs/training-gan.md.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from latentctl.models.configs import GANConfig, base_size, register

EMBED_INIT_STD = 0.3  # generator label embedding at initialisation (small: see docs/training-cgan.md)


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: convolutions ~ N(0, 0.02), BatchNorm scales ~ N(1, 0.02), biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, 0.0, 1.0)


def upsampling(kind: str, width_in: int, width_out: int) -> nn.Module:
    """A layer that doubles the resolution: DCGAN's transposed convolution, or nearest + 3x3 convolution."""
    if kind == "transpose":
        return nn.ConvTranspose2d(width_in, width_out, 4, 2, 1, bias=False)
    return NearestUpsampling(width_in, width_out)


class NearestUpsampling(nn.Sequential):
    """Nearest-neighbour x2 upsampling, then a 3x3 convolution: (N, in, H, W) -> (N, out, 2H, 2W).

    Computed, while ``folded`` (the default), as one stride-2 transposed convolution whose 4x4 kernel is
    folded from the 3x3 one (``fold_nearest_kernel``): the same function to float rounding, for 4/9 of the
    multiply-adds and no upsampled map in memory. ``folded = False`` computes it as written, bit for bit as
    before (``--precision fp32``). The children, so the weights' names, are those of the plain version.
    """

    def __init__(self, width_in: int, width_out: int) -> None:
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"),
                         nn.Conv2d(width_in, width_out, 3, 1, 1, bias=False))
        self.folded = True

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if not self.folded:
            return super().forward(features)
        return F.conv_transpose2d(features, fold_nearest_kernel(self[1].weight), stride=2, padding=1)


def fold_nearest_kernel(weight: torch.Tensor) -> torch.Tensor:
    """Return the transposed-convolution kernel (in, out, 4, 4), stride 2, padding 1, equal to nearest x2
    upsampling followed by the 3x3 convolution ``weight`` (out, in, 3, 3), padding 1.

    Along each axis, output 2i of the upsampled-then-convolved map is w0 x[i-1] + (w1 + w2) x[i], and
    output 2i+1 is (w0 + w1) x[i] + w2 x[i+1]. A transposed convolution with taps k0..k3 gives output 2i
    as k3 x[i-1] + k1 x[i] and output 2i+1 as k2 x[i] + k0 x[i+1], hence (k0, k1, k2, k3) =
    (w2, w1 + w2, w0 + w1, w0). Sums only: under autocast the kernel stays float32.
    """

    def fold(kernel: torch.Tensor, dim: int) -> torch.Tensor:
        tap0, tap1, tap2 = kernel.unbind(dim)
        return torch.stack([tap2, tap1 + tap2, tap0 + tap1, tap0], dim)

    return fold(fold(weight, 2), 3).transpose(0, 1)


@register
class Generator(nn.Module):
    """Maps noise (N, latent_dim) and labels (N,) to images (N, C, H, W) in [-1, 1]."""

    config_class = GANConfig

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        start, doublings = base_size(config.image_size)
        widths = [config.gen_width * 2 ** (doublings - 1 - i) for i in range(doublings)]
        in_features = config.latent_dim + (config.embed_dim if config.conditional else 0)
        self.embed: nn.Module | None = None
        if config.num_classes:
            self.embed = nn.Embedding(config.num_classes, config.embed_dim)
        elif config.num_attributes:
            self.embed = nn.Linear(config.num_attributes, config.embed_dim)
            # p(attributes): the attribute vectors of real faces (rows of 0 / 1), for drawing plausible mixes
            self.register_buffer("attribute_prior",
                                 torch.zeros(config.attribute_prior_size, config.num_attributes, dtype=torch.uint8))

        blocks: list[nn.Module] = [  # (N, in, 1, 1) -> (N, widths[0], start, start)
            nn.ConvTranspose2d(in_features, widths[0], start, 1, 0, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for width_in, width_out in zip(widths, widths[1:], strict=False):  # each doubles the resolution
            blocks += [upsampling(config.upsample, width_in, width_out), nn.BatchNorm2d(width_out), nn.ReLU(True)]
        blocks += [upsampling(config.upsample, widths[-1], config.channels), nn.Tanh()]
        self.net = nn.Sequential(*blocks)
        self.apply(init_weights)
        if self.embed is not None:  # a +-1 attribute vector's embedding gets the class embedding's spread
            nn.init.normal_(self.embed.weight, 0.0, EMBED_INIT_STD / max(config.num_attributes, 1) ** 0.5)

    def fold_upsampling(self, folded: bool = True) -> Generator:
        """Compute nearest upsampling folded into one transposed convolution (fast, the default) or as
        written (the reference computation); see ``NearestUpsampling``. Returns the generator."""
        for module in self.modules():
            if isinstance(module, NearestUpsampling):
                module.folded = folded
        return self

    def latent_matrix(self) -> torch.Tensor:
        """The linear map (C * S * S, latent_dim) from the noise to the first block's BatchNorm output, its
        scale folded in (see ``first_layer_matrix``)."""
        return first_layer_matrix(self.net[0], self.net[1], self.config.latent_dim)

    def first_features(self, noise: torch.Tensor, embedding: torch.Tensor | None = None) -> torch.Tensor:
        """The first block's output (N, C * S * S), after its BatchNorm and ReLU, for noise (N, latent_dim)
        and an embedded label (N, embed_dim) when the generator takes one."""
        inputs = noise if embedding is None else torch.cat([noise, embedding.to(noise.dtype)], dim=1)
        return self.net[:3](inputs[:, :, None, None]).flatten(1)

    def label_embedding(self, labels: torch.Tensor) -> torch.Tensor:
        """Return the embedding (N, embed_dim) of integer labels (N,), or of attributes (N, A) in [0, 1]."""
        if self.embed is None:
            raise ValueError("an unconditional generator has no label embedding")
        if self.config.num_attributes:
            return self.embed(attribute_signs(labels, self.config.num_attributes))
        return self.embed(labels)

    def synthesize(self, noise: torch.Tensor, embedding: torch.Tensor | None = None) -> torch.Tensor:
        """Generate from noise and an already embedded label (which may be a blend of two labels)."""
        inputs = noise if embedding is None else torch.cat([noise, embedding], dim=1)
        return self.net(inputs[:, :, None, None])

    def forward(self, noise: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embed is None:
            return self.synthesize(noise)
        if labels is None:
            raise ValueError("a conditional generator needs labels")
        return self.synthesize(noise, self.label_embedding(labels))


def first_layer_matrix(convolution: nn.ConvTranspose2d, norm: nn.BatchNorm2d, latent_dim: int) -> torch.Tensor:
    """Return the matrix A (C * S * S, latent_dim) of a first layer: a transposed convolution with an S x S
    kernel on the 1 x 1 input ``[noise, embedding]``, followed by a BatchNorm in eval mode.

    On a 1 x 1 input, output (c, i, j) is sum_d noise_d W[d, c, i, j] (+ the embedding's and bias terms), so
    W's rows are the map; the BatchNorm scales channel c by gamma_c / sqrt(running_var_c + eps), which is
    folded in (its shift, like the bias and the embedding, moves every output alike and is dropped). Only the
    noise's columns count: a label is not a direction to walk. Rows run channel-major, as the features'.
    """
    weight = convolution.weight[:latent_dim].detach()  # (latent_dim, C, S, S)
    scale = (norm.weight / torch.sqrt(norm.running_var + norm.eps)).detach()  # (C,)
    return (weight * scale[None, :, None, None]).flatten(1).T.contiguous()


class Discriminator(nn.Module):
    """Maps images (N, C, H, W) in [-1, 1] and labels (N,) or attributes (N, A) to real/fake logits (N,);
    conditioned on attributes, to (N, 1 + A): the real/fake logit and the attributes read off the image."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        start, doublings = base_size(config.image_size)
        widths = [config.disc_width * 2**i for i in range(doublings)]
        label_channels = 1 if config.conditional else 0
        self.label_map = label_table(config, config.image_size**2)

        blocks: list[nn.Module] = [  # no BatchNorm on the input block, as in DCGAN
            nn.Conv2d(config.channels + label_channels, widths[0], 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        for width_in, width_out in zip(widths, widths[1:], strict=False):  # each halves the resolution
            blocks += [nn.Conv2d(width_in, width_out, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width_out), nn.LeakyReLU(0.2, inplace=True)]
        self.features = nn.Sequential(*blocks)  # -> (N, widths[-1], start, start)
        self.head = nn.Conv2d(widths[-1], 1, start, 1, 0)
        self.projection = label_table(config, widths[-1] * start * start)
        self.attribute_head = (nn.Linear(widths[-1] * start * start, config.num_attributes)
                               if config.num_attributes else None)
        self.apply(init_weights)
        if self.projection is not None and self.label_map is not None:
            nn.init.normal_(self.projection.weight, 0.0, 0.02)
            nn.init.normal_(self.label_map.weight, 0.0, 0.02)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.label_map is None:
            return self.head(self.features(images)).flatten()
        if labels is None:
            raise ValueError("a conditional discriminator needs labels")
        size = self.config.image_size
        if self.config.num_attributes:
            labels = attribute_signs(labels, self.config.num_attributes).to(images.dtype)
        label_plane = self.label_map(labels).view(-1, 1, size, size)
        features = self.features(torch.cat([images, label_plane], dim=1))
        logits = self.head(features).flatten() + (self.projection(labels) * features.flatten(1)).sum(dim=1)
        if self.attribute_head is None:
            return logits
        return torch.cat([logits[:, None], self.attribute_head(features.flatten(1))], dim=1)


def split_logits(outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Split a discriminator's output into real/fake logits (N,) and attribute logits (N, A) or None."""
    if outputs.ndim == 1:
        return outputs, None
    return outputs[:, 0], outputs[:, 1:]


def label_table(config: GANConfig, width: int) -> nn.Module | None:
    """A learned vector of ``width`` per label: looked up for a class, summed (signed) over attributes."""
    if config.num_classes:
        return nn.Embedding(config.num_classes, width)
    if config.num_attributes:
        return nn.Linear(config.num_attributes, width, bias=False)
    return None


def attribute_signs(attributes: torch.Tensor, num_attributes: int) -> torch.Tensor:
    """Map attributes (N, A) in [0, 1] (1: has it) to 2y - 1 in [-1, 1], the form the networks read: every
    attribute pulls one way or the other, and a blend (steering) lies on the line between the two."""
    if attributes.ndim != 2 or attributes.shape[1] != num_attributes:
        raise ValueError(f"expected attributes of shape (N, {num_attributes}), got {tuple(attributes.shape)}")
    return attributes.float() * 2 - 1
