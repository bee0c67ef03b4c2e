"""Conditional DCGAN on MNIST-format digits: the dataset wiring and defaults for ``latentctl train cgan``."""

from __future__ import annotations

from pathlib import Path

from latentctl.models.dcgan import GANConfig
from latentctl.train.gan import ImageDataset
from latentctl.train.options import CGANRunOptions

DIGIT_LABELS = [str(digit) for digit in range(10)]


def default_config(latent_dim: int = CGANRunOptions.latent_dim, gen_width: int = CGANRunOptions.gen_width,
                   disc_width: int = CGANRunOptions.disc_width) -> GANConfig:
    """The digit cGAN: 28x28x1, ten classes, a 50-d label embedding (Mirza & Osindero used 100-d noise)."""
    return GANConfig(latent_dim=latent_dim, num_classes=10, embed_dim=50, image_size=28, channels=1,
                     gen_width=gen_width, disc_width=disc_width)


def load_digits(root: Path, split: str = "train") -> ImageDataset:
    """Load an MNIST-format folder (real or synthetic) as an in-memory uint8 dataset."""
    from latentctl.data.mnist import load_mnist

    images, labels = load_mnist(Path(root), split)  # (N, 28, 28) uint8, (N,) int64
    synthetic = (Path(root) / "SYNTHETIC.json").is_file()
    return ImageDataset(images=images[:, None].contiguous(), labels=labels, label_names=DIGIT_LABELS,
                        name="synthetic-digits" if synthetic else "mnist", synthetic=synthetic)
