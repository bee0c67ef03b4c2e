"""Differentiable augmentation of what the discriminator sees (DiffAugment, Zhao et al., 2020).

On a few thousand images the discriminator memorises the real set and the generator collapses. Colour
(brightness, saturation, contrast), translation and cutout applied to every image the discriminator reads, real
and fake alike, keep it from memorising; since each is differentiable, the generator still gets its gradient
through them, and since fakes are augmented too, the augmentations do not leak into what it learns to draw.
``latentctl.train.AUGMENT_BELOW`` is the dataset size below which ``train gan`` turns it on; docs/training-gan.md
has the measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

TRANSLATION = 1 / 8  # the largest shift, as a fraction of the side (DiffAugment's ratio)
CUTOUT = 1 / 2  # the side of the square cut out, as a fraction of the image's (DiffAugment's ratio)


@dataclass
class Augmentation:
    """The random draws of one augmentation of a batch of N images of side S: applying it is deterministic."""

    brightness: torch.Tensor  # (N, 1, 1, 1) added, in [-0.5, 0.5)
    saturation: torch.Tensor  # (N, 1, 1, 1) factor on the distance from the pixel's grey, in [0, 2)
    contrast: torch.Tensor  # (N, 1, 1, 1) factor on the distance from the image's mean, in [0.5, 1.5)
    shift: torch.Tensor  # (N, 2) int64 pixels (down, right), in [-S/8, S/8]
    cutout: torch.Tensor  # (N, 2) int64 top-left corner (row, column) of the square cut out; may lie outside


def draw(count: int, side: int, generator: torch.Generator, device: torch.device | str = "cpu") -> Augmentation:
    """Draw one augmentation of ``count`` images of ``side`` pixels from ``generator`` (on ``device``)."""
    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(count, 1, 1, 1, generator=generator, device=device)

    reach = int(side * TRANSLATION + 0.5)
    cut = int(side * CUTOUT + 0.5)
    return Augmentation(
        brightness=uniform(-0.5, 0.5), saturation=uniform(0.0, 2.0), contrast=uniform(0.5, 1.5),
        shift=torch.randint(-reach, reach + 1, (count, 2), generator=generator, device=device),
        # the square's centre is uniform over the whole image, its part outside cut off (as DiffAugment draws it)
        cutout=torch.randint(-(cut // 2), side - cut % 2 - cut // 2 + 1, (count, 2), generator=generator,
                             device=device))


def apply(images: torch.Tensor, augmentation: Augmentation) -> torch.Tensor:
    """Return ``images`` (N, C, S, S) in [-1, 1] augmented by ``augmentation``: same shape, still in [-1, 1],
    differentiable in ``images``. Colour values are clamped back into range; the pixels that translation
    uncovers and the cut-out square are 0 (mid-grey)."""
    count, _, height, width = images.shape
    x = images + augmentation.brightness
    x = (x - x.mean(dim=1, keepdim=True)) * augmentation.saturation + x.mean(dim=1, keepdim=True)
    x = (x - x.mean(dim=(1, 2, 3), keepdim=True)) * augmentation.contrast + x.mean(dim=(1, 2, 3), keepdim=True)
    x = x.clamp(-1, 1)
    # translation: read each output pixel from (row - down, column - right) of the image padded with zeros
    reach = int(height * TRANSLATION + 0.5)
    padded = F.pad(x, (reach, reach, reach, reach))
    rows = torch.arange(height, device=x.device)[None, :] + reach - augmentation.shift[:, :1]  # (N, S)
    columns = torch.arange(width, device=x.device)[None, :] + reach - augmentation.shift[:, 1:]
    batch = torch.arange(count, device=x.device)[:, None, None]
    x = padded[batch, :, rows[:, :, None], columns[:, None, :]].permute(0, 3, 1, 2)  # (N, S, S, C) -> (N, C, S, S)
    # cutout: zero the part inside the image of a square of side S * CUTOUT at the drawn corner
    cut = int(height * CUTOUT + 0.5)
    rows = torch.arange(height, device=x.device)[None, :]
    columns = torch.arange(width, device=x.device)[None, :]
    inside_rows = (rows >= augmentation.cutout[:, :1]) & (rows < augmentation.cutout[:, :1] + cut)  # (N, S)
    inside_columns = (columns >= augmentation.cutout[:, 1:]) & (columns < augmentation.cutout[:, 1:] + cut)
    keep = ~(inside_rows[:, :, None] & inside_columns[:, None, :])  # (N, S, S)
    return x * keep[:, None].to(x.dtype)


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Return ``images`` (N, C, S, S) in [-1, 1] under a fresh augmentation drawn from ``generator``."""
    return apply(images, draw(images.shape[0], images.shape[-1], generator, images.device))
