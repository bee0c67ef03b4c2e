"""Unconditional DCGAN on CelebA faces: the dataset wiring and defaults for ``latentctl train gan``.

The defaults are DCGAN's (Radford et al., 2016) for 64x64 faces: 100-d noise, widths 64, batch 128,
Adam lr 2e-4 with betas (0.5, 0.999), plus an EMA of the generator, horizontal flips, and nearest-neighbour
upsampling in place of transposed convolutions (see ``latentctl.models.dcgan``). The seed
projects used batch 64, lr 1e-3 and betas (0.5, 0.99): five times DCGAN's step size, which trains
faster for a few epochs and then oscillates; ``--lr 1e-3 --batch-size 64 --beta2 0.99`` reproduces them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from latentctl.data.prepare import DEFAULT_CROP, DEFAULT_SIZE, PreparedCelebA, ensure_prepared
from latentctl.models.dcgan import GANConfig
from latentctl.train.gan import ImageDataset


def default_config(image_size: int = DEFAULT_SIZE, latent_dim: int = 100, gen_width: int = 64,
                   disc_width: int = 64) -> GANConfig:
    """The face GAN: RGB, unconditional, upsampling without checkerboards (see models.dcgan)."""
    return GANConfig(latent_dim=latent_dim, num_classes=0, embed_dim=0, image_size=image_size, channels=3,
                     gen_width=gen_width, disc_width=disc_width, upsample="nearest")


def faces_dataset(prepared: PreparedCelebA, split: str = "train") -> ImageDataset:
    """Return ``split`` of a prepared CelebA as an unlabelled image set (memory-mapped, not copied)."""
    images, _ = prepared.select(split)
    fingerprint = {**prepared.fingerprint(), "split": split, "images": int(images.shape[0])}
    return ImageDataset(images=torch.from_numpy(images), labels=None, label_names=[], name=fingerprint["name"],
                        synthetic=fingerprint["synthetic"], identity=fingerprint)


def load_faces(root: Path, size: int = DEFAULT_SIZE, crop: int = DEFAULT_CROP,
               on_start: Callable[[str, int], None] | None = None,
               on_progress: Callable[[int, int], None] | None = None) -> ImageDataset:
    """Return the training faces of the CelebA in ``root``, preparing the cache first when needed."""
    return faces_dataset(ensure_prepared(Path(root), size, crop, on_start=on_start, on_progress=on_progress))
