"""DCGAN on CelebA faces: the dataset wiring and defaults for ``latentctl train gan``.

DCGAN's architecture (Radford et al., 2016) with nearest-neighbour upsampling, trained with the seed projects'
Adam held steady by an R1 penalty; ``--condition attributes`` gives each fake the attributes of the real face
beside it in the batch. docs/training-gan.md compares these defaults with DCGAN's and the seeds'."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from latentctl.data.prepare import PreparedCelebA
from latentctl.models.dcgan import GANConfig
from latentctl.train import FACE_BETAS, FACE_LR, FACE_R1
from latentctl.train.gan import ImageDataset
from latentctl.train.options import GANRunOptions, TrainOptions


def default_options(**overrides: Any) -> TrainOptions:
    """The face GAN's training options: the seeds' Adam held steady by R1, and flips; ``overrides`` win."""
    settings = {"lr": FACE_LR, "beta1": FACE_BETAS[0], "beta2": FACE_BETAS[1], "r1": FACE_R1, "flip": True,
                **overrides}
    return TrainOptions(**settings)


ATTRIBUTE_EMBED_DIM = 32  # the attribute embedding beside the 100-d noise: a third of the generator's input
ATTRIBUTE_PRIOR_SIZE = 4096  # real faces' attribute vectors kept in the generator (4 KB per 1,000 rows of 40)


def default_config(image_size: int = GANRunOptions.size, latent_dim: int = GANRunOptions.latent_dim,
                   gen_width: int = GANRunOptions.gen_width, disc_width: int = GANRunOptions.disc_width,
                   num_attributes: int = 0, faces: int = ATTRIBUTE_PRIOR_SIZE) -> GANConfig:
    """The face GAN: RGB, upsampling without checkerboards (see models.dcgan); conditioned on
    ``num_attributes`` binary attributes when that is > 0 (of ``faces`` training faces), else unconditional."""
    return GANConfig(latent_dim=latent_dim, num_classes=0, embed_dim=ATTRIBUTE_EMBED_DIM if num_attributes else 0,
                     num_attributes=num_attributes,
                     attribute_prior_size=min(ATTRIBUTE_PRIOR_SIZE, faces) if num_attributes else 0,
                     image_size=image_size, channels=3, gen_width=gen_width, disc_width=disc_width, upsample="nearest")


def drawn_attributes(prepared: PreparedCelebA) -> list[str]:
    """The attributes a face set shows in its pictures: all 40 of CelebA, the rendered ones of a synthetic set."""
    hidden = set(prepared.not_rendered)
    return [name for name in prepared.attribute_names if name not in hidden]


def faces_dataset(prepared: PreparedCelebA, split: str = "train",
                  attributes: list[str] | None = None) -> ImageDataset:
    """Return ``split`` of a prepared CelebA as an image set (memory-mapped, not copied): unlabelled, or
    labelled with ``attributes`` (names of the set's attributes) as (N, A) uint8 in {0, 1}."""
    images, table = prepared.select(split)
    fingerprint = {**prepared.fingerprint(), "split": split, "images": int(images.shape[0])}
    labels = None
    if attributes:
        columns = [prepared.attribute_names.index(name) for name in attributes]
        labels = torch.from_numpy(np.ascontiguousarray(table[:, columns]))
        fingerprint["attributes"] = list(attributes)
    return ImageDataset(images=torch.from_numpy(images), labels=labels, label_names=list(attributes or []),
                        name=fingerprint["name"], synthetic=fingerprint["synthetic"], identity=fingerprint)
