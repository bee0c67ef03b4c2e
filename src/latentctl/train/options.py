"""The settings of training runs, with their defaults: the one place ``latentctl train ...`` reads them from.

``TrainOptions`` and ``ClassifierOptions`` are what a trainer runs with; they are saved with the run, so a
resume continues with them. ``CGANRunOptions``, ``GANRunOptions`` and ``ClassifierRunOptions`` are what
starting a run takes (``latentctl.train.runs.start``): a trainer's options and the network's size, each field
named as its flag (``batch_size`` is ``--batch-size``). Importing this module does not import torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from latentctl.errors import LatentctlError
from latentctl.train import FACE_ATTRIBUTE_LOSS, FACE_BETAS, FACE_LR

PRECISIONS = ("auto", "fp32", "bf16")  # see latentctl.train.speed
LR_SCHEDULES = ("cosine", "constant")
CONDITIONS = ("none", "attributes")  # what the face GAN is conditioned on (see latentctl.models.dcgan)


def check_precision(precision: str) -> None:
    """Raise a LatentctlError unless ``precision`` is one of PRECISIONS."""
    if precision not in PRECISIONS:
        raise LatentctlError(f"unknown precision {precision!r}", hint=f"use one of {', '.join(PRECISIONS)}")


@dataclass
class TrainOptions:
    """A GAN's optimisation hyper-parameters; saved with the run so ``--resume`` continues with the same ones."""

    epochs: int = 20
    batch_size: int = 128  # the global batch: with several processes each takes an equal share
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    ema_decay: float = 0.999
    mode_seeking: float = 0.0  # weight of the mode-seeking term (off by default)
    r1: float = 0.0  # weight (gamma) of the R1 penalty on the discriminator's gradient at real images; 0: off
    attribute_loss: float = 0.0  # attribute-conditioned GANs: weight of the auxiliary attribute classifier's loss
    flip: bool = False  # mirror half of the real images left-right (faces yes, digits no)
    augment: bool = False  # DiffAugment what the discriminator reads, real and fake (latentctl.train.augment)
    seed: int = 0
    sample_every: int = 1  # epochs between sample grids
    log_every: int = 20  # steps between host reads of the losses (progress refresh, NaN check)
    sync_bn: bool = False  # with several processes: the discriminator's BatchNorm over the global batch
    precision: str = "auto"  # auto|fp32|bf16, see latentctl.train.speed; fp32 is the reference computation
    compile: bool | None = None  # torch.compile the networks; None: where it pays (CUDA)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.sample_every < 1 or self.log_every < 1:
            raise LatentctlError("epochs, sample-every and log-every must be >= 1 and batch size >= 2")
        check_precision(self.precision)
        if not (self.lr > 0 and 0 <= self.beta1 < 1 and 0 <= self.beta2 < 1 and 0 <= self.ema_decay < 1
                and self.mode_seeking >= 0 and self.r1 >= 0 and self.attribute_loss >= 0):
            raise LatentctlError("learning rate must be > 0; betas and EMA decay in [0, 1); mode seeking, R1 and "
                                 "the attribute loss >= 0")
        if self.r1 > 0 and self.sync_bn:
            raise LatentctlError("the R1 penalty differentiates the discriminator's gradient, which SyncBatchNorm "
                                 "cannot", hint="drop --sync-bn, or pass --r1 0")


@dataclass
class ClassifierOptions:
    """The attribute classifier's optimisation settings; saved with the run so ``--resume`` continues with them.

    The seed project trained 3 epochs at batch 64 with Adam at a constant 1e-3 (7,600 steps on CelebA's
    162,770 training images). These defaults keep its batch, train 5 epochs (12,700 steps), since the rare
    attributes, whose features are learned last, keep improving after the third, and start Adam at 2e-3,
    decayed to 0 along a half cosine over the run (``lr_schedule="cosine"``): the large early steps learn
    the features fast and the small late ones settle the rare attributes' boundaries, which a constant rate
    keeps jittering (measured in docs/training-classifier.md).
    """

    epochs: int = 5
    batch_size: int = 64  # the global batch: with several processes each takes an equal share
    lr: float = 2e-3  # the peak, at the first step
    lr_schedule: str = "cosine"  # cosine: lr * (1 + cos(pi * step / total steps)) / 2; constant: lr throughout
    seed: int = 0
    log_every: int = 20  # steps between host reads of the loss (progress refresh, NaN check)
    sync_bn: bool = False  # with several processes: BatchNorm statistics over the global batch
    precision: str = "auto"  # auto|fp32|bf16, see latentctl.train.speed; fp32 is the reference computation
    compile: bool | None = None  # torch.compile the model; None: where it pays (CUDA)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.log_every < 1:
            raise LatentctlError("epochs and log-every must be >= 1 and batch size >= 2")
        check_precision(self.precision)
        if not self.lr > 0:
            raise LatentctlError("the learning rate must be > 0")
        if self.lr_schedule not in LR_SCHEDULES:
            raise LatentctlError(f"unknown learning-rate schedule {self.lr_schedule!r}",
                                 hint=f"use one of {', '.join(LR_SCHEDULES)}")

    def lr_at(self, step: int, total_steps: int) -> float:
        """The learning rate of the step after ``step`` of ``total_steps`` (a pure function, so a resumed run
        takes the steps an uninterrupted one takes; given a larger ``--epochs``, the decay stretches to it)."""
        if self.lr_schedule == "constant":
            return self.lr
        return self.lr * 0.5 * (1 + math.cos(math.pi * min(step / max(total_steps, 1), 1.0)))


@dataclass
class EncoderOptions:
    """A latent encoder's optimisation settings; saved with the run so ``--resume`` continues with them.

    Each step draws ``batch_size`` latents z, the generator draws G(z), and the encoder's guess E(G(z)) is
    scored on the latent (mean squared error to z) and on the image it draws, G(E(G(z))) against G(z): pixels,
    and the attribute classifier's features when there is one (``latent.inversion.feature_distance``)."""

    epochs: int = 10
    epoch_images: int = 6400  # generated images per epoch (drawn on the fly: an epoch is a unit of progress)
    batch_size: int = 64
    lr: float = 1e-3
    latent_weight: float = 1.0
    pixel_weight: float = 1.0  # mean squared error on pixels in [-1, 1]
    feature_weight: float = 0.1  # the classifier's features, as invert weighs them
    seed: int = 0
    log_every: int = 20
    precision: str = "auto"
    compile: bool | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.log_every < 1 or self.epoch_images < self.batch_size:
            raise LatentctlError("epochs and log-every must be >= 1, batch size >= 2 and images per epoch at least "
                                 "one batch")
        check_precision(self.precision)
        if not (self.lr > 0 and min(self.latent_weight, self.pixel_weight, self.feature_weight) >= 0):
            raise LatentctlError("the learning rate must be > 0 and the loss weights >= 0")


# The run options: what ``start`` takes, every field named as its flag. A resumed run keeps every one of them
# but ``epochs`` (None: the kind's EPOCHS, or on resume the run's own) and those of RESUME_FREE, which watch the
# run rather than shape it.

@dataclass
class RunOptions:
    """What every kind of run takes; each kind's subclass adds its own and names its defaults."""

    KIND: ClassVar[str]
    MODEL: ClassVar[str]  # the default model folder, in $LATENTCTL_HOME/models
    DATA: ClassVar[str]  # the default dataset folder, in $LATENTCTL_HOME/data
    EPOCHS: ClassVar[int]

    epochs: int | None = None
    seed: int = 0
    sync_bn: bool = False
    precision: str = "auto"
    compile: bool | None = None
    log_dir: Path | None = None  # TensorBoard event files go there (needs the tensorboard extra)


@dataclass
class _GANRunOptions(RunOptions):
    latent_dim: int = 100
    gen_width: int = 64
    disc_width: int = 64
    sample_every: int = TrainOptions.sample_every
    batch_size: int = TrainOptions.batch_size
    ema_decay: float = TrainOptions.ema_decay
    fid_every: int = 0  # epochs between FID measurements (and after the last); 0: never
    fid_images: int = 10_000  # generated and real images each FID reads
    inception_weights: Path | None = None  # the FID Inception's weights file (default: fetched, see eval.fid)


@dataclass
class CGANRunOptions(_GANRunOptions):
    """``latentctl train cgan``: the conditional DCGAN on MNIST-format digits."""

    KIND, MODEL, DATA, EPOCHS = "cgan", "cgan-mnist", "mnist", TrainOptions.epochs

    lr: float = TrainOptions.lr
    beta1: float = TrainOptions.beta1
    beta2: float = TrainOptions.beta2
    mode_seeking: float = TrainOptions.mode_seeking


@dataclass
class GANRunOptions(_GANRunOptions):
    """``latentctl train gan``: the face DCGAN on a prepared CelebA (real or synthetic) or an imported folder
    (``data``), optionally conditioned on the images' attributes (``condition="attributes"``: every one the
    data draws, or those of ``attribute``)."""

    KIND, MODEL, DATA, EPOCHS = "gan", "gan-celeba", "celeba", 25

    data: str = "celeba"  # CelebA (real or synthetic, in --data-root), or the name of an imported folder
    condition: str = "none"
    attribute: list[str] | None = None
    attribute_loss: float = FACE_ATTRIBUTE_LOSS  # with condition="attributes"
    lr: float = FACE_LR
    beta1: float = FACE_BETAS[0]
    beta2: float = FACE_BETAS[1]
    flip: bool = True
    augment: bool | None = None  # None: on below AUGMENT_BELOW training images
    r1: float | None = None  # None: FACE_R1, or 0 with sync_bn (SyncBatchNorm cannot differentiate it)
    size: int = 64  # the image side, and the crop from CelebA's 178x218 frame: data.prepare's defaults
    crop: int = 178


@dataclass
class ClassifierRunOptions(RunOptions):
    """``latentctl train classifier``: the attribute classifier on a prepared CelebA (real or synthetic)."""

    KIND, MODEL, DATA, EPOCHS = "classifier", "classifier-celeba", "celeba", ClassifierOptions.epochs

    data: str = GANRunOptions.data
    width: int = 32  # models.classifier.ClassifierConfig's
    members: int = 1
    batch_size: int = ClassifierOptions.batch_size
    lr: float = ClassifierOptions.lr
    lr_schedule: str = ClassifierOptions.lr_schedule
    size: int = GANRunOptions.size
    crop: int = GANRunOptions.crop


@dataclass
class EncoderRunOptions(RunOptions):
    """``latentctl train encoder``: a latent encoder for the face generator ``model`` (default gan-celeba),
    trained on the generator's own faces; ``classifier`` (default classifier-celeba, left out when missing)
    adds its features to the loss. The default folder is the generator's, with -encoder appended."""

    KIND, MODEL, DATA, EPOCHS = "encoder", "gan-celeba-encoder", "", EncoderOptions.epochs

    model: str | None = None
    classifier: str | None = None
    width: int = 32  # models.encoder.EncoderConfig's
    batch_size: int = EncoderOptions.batch_size
    lr: float = EncoderOptions.lr
    epoch_images: int = EncoderOptions.epoch_images
    latent_weight: float = EncoderOptions.latent_weight
    pixel_weight: float = EncoderOptions.pixel_weight
    feature_weight: float = EncoderOptions.feature_weight


RUN_OPTIONS: dict[str, type[RunOptions]] = {options.KIND: options for options in (CGANRunOptions, GANRunOptions,
                                                                                   ClassifierRunOptions,
                                                                                   EncoderRunOptions)}
# The order in which the warning about what a resume ignores names the flags.
RESUME_KEEPS = ("data", "condition", "attribute", "attribute_loss", "batch_size", "lr", "lr_schedule", "beta1",
                "beta2", "ema_decay", "mode_seeking", "flip", "augment", "r1", "latent_dim", "gen_width", "disc_width",
                "width", "members", "size", "crop", "sample_every", "model", "classifier", "epoch_images",
                "latent_weight", "pixel_weight", "feature_weight", "seed", "sync_bn", "precision", "compile")
RESUME_FREE = ("epochs", "log_dir", "fid_every", "fid_images", "inception_weights")  # a resume takes these anew
