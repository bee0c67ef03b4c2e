"""Training the attribute classifier on the prepared CelebA cache (real or synthetic).

The loop keeps the GAN loop's conventions (``latentctl.train.gan``): uint8 images on the device, one
checkpointed generator for data order and flips (no dropout), so a resume continues bit for bit, and a loss
checked finite before any checkpoint. After each epoch it measures every attribute's accuracy and balanced
accuracy on the validation split (``latentctl.eval.metrics``; docs/training-classifier.md)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from latentctl import console
from latentctl.data.prepare import PreparedCelebA
from latentctl.errors import LatentctlError
from latentctl.eval.metrics import attribute_counts, metrics_from_counts, require_images
from latentctl.eval.reading import as_tensor, predict_present
from latentctl.images import to_unit_range
from latentctl.models.classifier import AttributeClassifier, ClassifierConfig
from latentctl.train import speed
from latentctl.train.checkpoint import CheckpointedLoop
from latentctl.train.distributed import SINGLE, Distributed
from latentctl.train.gan import batch_to, place_images
from latentctl.train.loop import Callback
from latentctl.train.options import ClassifierOptions

KIND = "classifier"
EVAL_BATCH = 256


@dataclass
class AttributeData:
    """Images with binary attributes, train and validation splits, held as uint8: what the loop reads."""

    train_images: torch.Tensor  # (N, 3, S, S) uint8
    train_attributes: torch.Tensor  # (N, A) uint8 in {0, 1}
    val_images: torch.Tensor  # (M, 3, S, S) uint8
    val_attributes: torch.Tensor  # (M, A) uint8 in {0, 1}
    names: list[str]  # the A attribute names, in column order
    crop: int  # the square cut from the source images before resizing (see latentctl.data.prepare)
    fingerprint: dict[str, Any]
    not_rendered: list[str] = field(default_factory=list)  # labelled but not drawn (synthetic faces)

    @classmethod
    def from_prepared(cls, prepared: PreparedCelebA) -> AttributeData:
        """Return the train and val splits of a prepared CelebA (images memory-mapped, not copied)."""
        train_images, train_attributes = prepared.select("train")
        val_images, val_attributes = prepared.select("val")
        return cls(*(torch.from_numpy(array) for array in (train_images, train_attributes, val_images, val_attributes)),
                   prepared.attribute_names, int(prepared.meta["crop"]), prepared.fingerprint(),
                   prepared.not_rendered)

    @property
    def image_size(self) -> int:
        return int(self.train_images.shape[-1])


@dataclass
class ClassifierEpochReport:
    epoch: int  # 1-based, completed
    loss: float  # mean training loss over the epoch
    mean_accuracy: float  # on the validation split
    mean_balanced_accuracy: float
    seconds: float  # training, without the evaluation


class ClassifierTrainer(CheckpointedLoop):
    """Trains an AttributeClassifier with binary cross-entropy over every attribute, into a model folder; one
    rank of several under torchrun."""

    def __init__(self, config: ClassifierConfig, options: ClassifierOptions, data: AttributeData, out_dir: Path,
                 device: torch.device, dist: Distributed = SINGLE) -> None:
        _check_data(config, data)
        dist.check_batch_size(options.batch_size)
        self.config, self.options, self.data = config, options, data
        self.out_dir, self.device, self.dist = Path(out_dir), device, dist

        torch.manual_seed(options.seed)  # weight initialisation, the same on every rank
        self.step_settings = speed.resolve(options.precision, options.compile, device)
        speed.tune(device)
        self.model = speed.place(AttributeClassifier(config), device, self.step_settings)
        self.model.start_at_base_rates(data.train_attributes.float().mean(0))
        if options.sync_bn:
            self.model = dist.sync_batchnorm(self.model, device)
        # in DDP across processes (compiled where that pays), the model itself in one
        self.synced_model = speed.compiled(dist.wrap(self.model, device), self.step_settings)
        self.optimizer = speed.adam(self.model.parameters(), self.step_settings, lr=options.lr)
        self.data_rng = torch.Generator().manual_seed(options.seed)

        self.train_images = place_images(data.train_images, device)  # moved once when it fits
        self.train_targets = data.train_attributes.to(self.train_images.device).float()  # (N, A) in {0, 1}
        self.val_images = place_images(data.val_images, device)
        self._start_loop()
        self.epoch_start_data_state = self.data_rng.get_state()
        self.loss_sum = torch.zeros((), device=device)  # over this epoch
        self.history: dict[str, list[float]] = {"step": [], "loss": []}
        self.logged = (0, 0.0)  # step in epoch and loss sum at the last host read
        self.epochs: list[dict[str, Any]] = []

    @property
    def steps_per_epoch(self) -> int:
        return self.train_images.shape[0] // self.options.batch_size  # the ragged last batch is dropped

    @property
    def learning_rate(self) -> float:
        """The rate of the next step, where the schedule stands after ``global_step`` of the run's steps."""
        return self.options.lr_at(self.global_step, self.options.epochs * self.steps_per_epoch)

    def _examples(self) -> tuple[str, int]:
        return "the training split", self.train_images.shape[0]

    @property
    def metrics(self) -> dict[str, Any] | None:
        """The validation metrics after the last completed epoch (see ``eval.metrics.evaluate_classifier``)."""
        return self.epochs[-1]["validation"] if self.epochs else None

    # ------------------------------------------------------------------------------------------ one step

    def _epoch_plan(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return this epoch's image order and which images to flip, both drawn from the epoch's start state."""
        self.data_rng.set_state(self.epoch_start_data_state)
        count = self.train_images.shape[0]
        order = torch.randperm(count, generator=self.data_rng)
        flips = torch.rand(count, generator=self.data_rng) < 0.5
        return order.to(self.train_images.device), flips.to(self.device)

    def train_step(self, batch_index: torch.Tensor, flip: torch.Tensor) -> None:
        """One Adam step on this rank's batch: mean binary cross-entropy over images and attributes (and over
        the members of an ensemble, each fitting the labels on its own)."""
        images = to_unit_range(batch_to(self.train_images[batch_index], self.device))  # (B, 3, S, S)
        images = speed.layout(torch.where(flip[:, None, None, None], images.flip(3), images), self.step_settings)
        targets = batch_to(self.train_targets[batch_index], self.device)
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate
        with speed.autocast(self.device, self.step_settings):
            logits = self.synced_model(images, each_member=True).float()  # (members, B, A)
        loss = F.binary_cross_entropy_with_logits(logits, targets.expand_as(logits))
        self._optimizer_step(loss)

    # ----------------------------------------------------------------------------------------- the loop

    def train(self, callback: Callback | None = None) -> bool:
        """Train until ``options.epochs`` are done; return False if stopped early by ``stop_requested``."""
        self.model.train()
        return super().train(callback)

    def _readings(self) -> dict[str, float]:
        """Read this epoch's mean loss (one host sync), over all ranks' batches."""
        self.loss_sum = self._share_progress(self.loss_sum)
        return self._loss_reading(self.loss_sum.item())

    def _finish_epoch(self, seconds: float) -> ClassifierEpochReport:
        loss = self.read_progress()["loss"]
        started = time.perf_counter()
        metrics = self.validate()
        self._next_epoch(self.loss_sum)
        self.epochs.append({"epoch": self.epoch, "loss": loss, "seconds": round(seconds, 3),
                            "eval_seconds": round(time.perf_counter() - started, 3), "validation": metrics})
        self.save_checkpoint()
        return ClassifierEpochReport(self.epoch, loss, metrics["mean_accuracy"], metrics["mean_balanced_accuracy"],
                                     seconds)

    def validate(self) -> dict[str, Any]:
        """Return the validation metrics of the model as it is (see ``eval.metrics.evaluate_classifier``).

        With several processes each reads its own share of the split and the counts are summed, so every
        rank gets the numbers one process would compute on the whole split, in 1/world_size of the time."""
        count, ranks = self.val_images.shape[0], self.dist.world_size
        require_images(count)
        self.dist.sync_buffers(self.model)  # every rank evaluates rank 0's model
        start, end = self.dist.rank * count // ranks, (self.dist.rank + 1) * count // ranks
        predicted = (predict_present(self.model, self.val_images[start:end], EVAL_BATCH) if end > start
                     else torch.zeros(0, len(self.data.names), dtype=torch.bool))  # fewer images than ranks
        counts = attribute_counts(predicted, as_tensor(self.data.val_attributes[start:end]).cpu().bool())
        return metrics_from_counts(self.dist.sum(counts), self.data.names)

    # ------------------------------------------------------------------------------------------ outputs

    def step_text(self, readings: dict[str, float]) -> str:
        return f"loss {readings['loss']:.4f}"

    def epoch_text(self, report: ClassifierEpochReport) -> str:
        return (f"epoch {report.epoch}/{self.options.epochs}  loss {report.loss:.4f}  validation: "
                f"accuracy {report.mean_accuracy:.1%}  balanced accuracy {report.mean_balanced_accuracy:.1%}  "
                f"{report.seconds:.1f}s")

    # ------------------------------------------------------- the checkpoint (latentctl.train.checkpoint)

    kind = KIND
    options_type = ClassifierOptions
    config_type = ClassifierConfig
    config_key = "classifier"  # where training_state.json keeps the config
    saved_network = "model"
    # runs from before --precision computed in fp32, and those from before --lr-schedule at a constant lr
    legacy_options = {"precision": "fp32", "lr_schedule": "constant"}

    def networks(self) -> dict[str, nn.Module]:
        return {"model": self.model}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"optimizer": self.optimizer}

    def data_fingerprint(self) -> dict[str, Any]:
        return self.data.fingerprint

    def model_labels(self) -> list[str]:
        return list(self.data.names)

    def _own_training(self) -> dict[str, Any]:
        summary: dict[str, Any] = {}
        if self.epochs:
            last, metrics = self.epochs[-1], self.epochs[-1]["validation"]
            summary = {"final": {"loss": round(last["loss"], 4),
                                 "val_mean_accuracy": round(metrics["mean_accuracy"], 4),
                                 "val_mean_balanced_accuracy": round(metrics["mean_balanced_accuracy"], 4)},
                       "validation": {"images": metrics["images"],
                                      "accuracy": _rounded(metrics["accuracy"]),
                                      "balanced_accuracy": _rounded(metrics["balanced_accuracy"])}}
        base_rates = dict(zip(self.data.names, self.data.train_attributes.float().mean(0).tolist(), strict=True))
        return {"preprocessing": self.preprocessing(), "augmentation": "horizontal flip, p = 0.5",
                "options": asdict(self.options), **summary, "base_rates": _rounded(base_rates)}

    def preprocessing(self) -> dict[str, Any]:
        """How an image must be prepared for this model: crop_and_resize(size, crop), then x / 127.5 - 1."""
        return {"size": self.config.image_size, "crop": self.data.crop, "resize": "lanczos",
                "pixels": "x / 127.5 - 1"}

    def _own_state(self) -> dict[str, Any]:
        return {"preprocessing": self.preprocessing()}

    def _gather_for_checkpoint(self) -> None:
        self.dist.sync_buffers(self.model)

    def _state_tensors(self, gathered: None) -> dict[str, torch.Tensor]:
        return {"loss_sum": self.loss_sum}

    @classmethod
    def read_state(cls, out_dir: Path) -> dict[str, Any]:
        state = super().read_state(out_dir)
        kind = state.get("kind", "cgan") if isinstance(state, dict) else None
        if kind != KIND:
            raise LatentctlError(f"{out_dir} holds a {kind} training run, not a classifier's",
                                 hint="pass --out with a classifier run, or --force to start over there")
        return state

    @classmethod
    def _rebuild(cls, state: dict[str, Any], config: ClassifierConfig, options: ClassifierOptions,
                 data: AttributeData, out_dir: Path, device: torch.device, dist: Distributed) -> ClassifierTrainer:
        """A trainer for the saved run on ``data``, which must be prepared as the run's (any number of
        processes resumes any run: the data order and flips do not depend on it)."""
        size, crop = state.get("preprocessing", {}).get("size"), state.get("preprocessing", {}).get("crop")
        if (data.image_size, data.crop) != (size, crop):
            raise LatentctlError(f"the run in {out_dir} trains on {size}px images cropped to {crop}, the data "
                                 f"given is {data.image_size}px cropped to {data.crop}",
                                 hint=f"resume with --size {size} --crop {crop}")
        return cls(config, options, data, out_dir, device, dist=dist)

    def _restore(self, state: dict[str, Any], tensors: dict[str, torch.Tensor], planned_epochs: int,
                 warn: Callable[[str], None]) -> None:
        self.loss_sum = tensors["loss_sum"].to(self.device)
        self.logged = (self.step_in_epoch, self.loss_sum.item())
        if self.options.epochs != planned_epochs and self.options.lr_schedule == "cosine":
            warn(f"the learning rate's cosine now spans {self.options.epochs} epochs, not {planned_epochs}: it goes "
                 f"on from {self.learning_rate:.2g}, so the run is not the one {self.options.epochs} epochs from the "
                 "start would make")


# ------------------------------------------------------------------------------------------------ helpers

def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 4) for name, value in values.items()}


def _check_data(config: ClassifierConfig, data: AttributeData) -> None:
    _, channels, height, width = data.train_images.shape
    if (channels, height, width) != (config.channels, config.image_size, config.image_size):
        raise LatentctlError(f"the dataset's images are {channels}x{height}x{width}, the classifier expects "
                             f"{config.channels}x{config.image_size}x{config.image_size}")
    if data.train_attributes.shape[1] != config.num_attributes or len(data.names) != config.num_attributes:
        raise LatentctlError(f"the dataset has {data.train_attributes.shape[1]} attributes, the classifier "
                             f"{config.num_attributes}")
    if data.val_images.shape[0] == 0:
        raise LatentctlError("the dataset has no validation images, which the classifier is evaluated on",
                             hint="check the dataset's partition file (list_eval_partition.txt)")


def print_validation_table(metrics: dict[str, Any], not_rendered: list[str]) -> None:
    """Print each attribute's validation accuracy and balanced accuracy, then their means (stderr)."""
    names = list(metrics["accuracy"])
    rows = [[name, f"{metrics['accuracy'][name]:.1%}", f"{metrics['balanced_accuracy'][name]:.1%}",
             f"{metrics['positives'][name] / metrics['images']:.1%}",
             "[dim]not drawn[/]" if name in not_rendered else ""] for name in names]
    console.print_table(f"validation ({metrics['images']:,} images)",
                        ["attribute", "accuracy", "balanced accuracy", "present in", ""], rows)
    console.info(f"mean over the {len(names)} attributes: accuracy {metrics['mean_accuracy']:.1%}, "
                 f"balanced accuracy {metrics['mean_balanced_accuracy']:.1%}")
    drawn = [name for name in names if name not in not_rendered]
    if not_rendered and drawn:
        console.info(f"mean over the {len(drawn)} attributes the synthetic faces draw: accuracy "
                     f"{sum(metrics['accuracy'][n] for n in drawn) / len(drawn):.1%}, balanced accuracy "
                     f"{sum(metrics['balanced_accuracy'][n] for n in drawn) / len(drawn):.1%} (the other "
                     f"{len(not_rendered)} are labels only: nothing in the image says them)")
