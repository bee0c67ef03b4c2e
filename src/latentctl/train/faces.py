"""Unconditional DCGAN on CelebA faces: the dataset wiring and defaults for ``latentctl train gan``.

The architecture is DCGAN's (Radford et al., 2016) for 64x64 faces: 100-d noise, widths 64, batch 128, with
nearest-neighbour upsampling in place of transposed convolutions (see ``latentctl.models.dcgan``), an EMA of
the generator and horizontal flips. The optimiser is the seed projects' Adam, lr 1e-3 with betas (0.5, 0.99),
held steady by an R1 penalty of weight 1 (``latentctl.train.FACE_LR`` and its neighbours): against DCGAN's
lr 2e-4 and betas (0.5, 0.999) it drew sharper faces and the rare attributes two to three times as often in
the same steps. ``--batch-size 64 --r1 0`` reproduces the seeds' training.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from latentctl.data.prepare import DEFAULT_CROP, DEFAULT_SIZE, PreparedCelebA, ensure_prepared
from latentctl.models.dcgan import GANConfig
from latentctl.train import FACE_BETAS, FACE_LR, FACE_R1
from latentctl.train.gan import ImageDataset, TrainOptions


def default_options(**overrides: Any) -> TrainOptions:
    """The face GAN's training options: the seeds' Adam held steady by R1, and flips; ``overrides`` win."""
    settings = {"lr": FACE_LR, "beta1": FACE_BETAS[0], "beta2": FACE_BETAS[1], "r1": FACE_R1, "flip": True,
                **overrides}
    return TrainOptions(**settings)


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
