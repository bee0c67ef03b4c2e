"""Training a latent encoder on a face generator's own faces (``latentctl train encoder``).

There is no dataset: each epoch's latents are drawn from one checkpointed random generator, the frozen
generator draws their faces, and the encoder learns to map each face back to its latent (the loss is in
``EncoderOptions``). The loop, checkpoints, resume and Ctrl-C are every trainer's (``train.loop``,
``train.checkpoint``); a resume continues bit for bit, and refuses a generator whose weights changed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from latentctl.errors import LatentctlError
from latentctl.latent.inversion import activations, feature_distance
from latentctl.latent.sampling import noise_for_seeds
from latentctl.models.configs import EncoderConfig
from latentctl.models.encoder import LatentEncoder
from latentctl.store import ModelConfig
from latentctl.train import speed
from latentctl.train.checkpoint import CheckpointedLoop
from latentctl.train.distributed import SINGLE, Distributed
from latentctl.train.options import EncoderOptions

KIND = "encoder"
VALIDATION_SEEDS = range(1_000_000, 1_000_256)  # the faces every epoch is measured on, never trained on


@dataclass
class GeneratorData:
    """What an encoder learns from: the frozen generator (and classifier), with what the run records of them."""

    generator: nn.Module
    config: ModelConfig
    record: dict[str, str]  # latent.encoders.generator_record: the generator's folder and weights' sha256
    classifier: nn.Module | None = None
    classifier_dir: Path | None = None


@dataclass
class EncoderEpochReport:
    epoch: int  # 1-based, completed
    loss: float  # mean training loss over the epoch
    latent_rmse: float  # on the validation faces: root mean squared error of the guessed latents
    psnr_db: float  # of the guess's face against the face, pixels in [0, 1]
    seconds: float


class EncoderTrainer(CheckpointedLoop):
    """Trains a LatentEncoder for one generator, into a model folder."""

    def __init__(self, config: EncoderConfig, options: EncoderOptions, data: GeneratorData, out_dir: Path,
                 device: torch.device, dist: Distributed = SINGLE) -> None:
        _check_generator(config, data)
        self.config, self.options, self.data = config, options, data
        self.out_dir, self.device, self.dist = Path(out_dir), device, dist
        torch.manual_seed(options.seed)
        self.step_settings = speed.resolve(options.precision, options.compile, device)
        self.encoder = speed.place(LatentEncoder(config), device, self.step_settings)
        self.optimizer = speed.adam(self.encoder.parameters(), self.step_settings, lr=options.lr)
        for network in (data.generator, data.classifier):
            if network is not None:
                network.to(device).eval().requires_grad_(False)
        self.data_rng = torch.Generator().manual_seed(options.seed)
        self._start_loop()
        self.epoch_start_data_state = self.data_rng.get_state()
        self.loss_sum = torch.zeros((), device=device)
        self.history: dict[str, list[float]] = {"step": [], "loss": []}
        self.logged = (0, 0.0)
        self.epochs: list[dict[str, Any]] = []

    @property
    def steps_per_epoch(self) -> int:
        return self.options.epoch_images // self.options.batch_size

    def _examples(self) -> tuple[str, int]:
        return "an epoch", self.options.epoch_images

    def _epoch_plan(self) -> tuple[torch.Tensor]:
        """This epoch's latents (steps * batch, D), drawn from the epoch's start state."""
        self.data_rng.set_state(self.epoch_start_data_state)
        count = self.steps_per_epoch * self.options.batch_size
        return (torch.randn(count, self.config.latent_dim, generator=self.data_rng).to(self.device),)

    def losses(self, latents: torch.Tensor) -> torch.Tensor:
        """The loss (N,) of the encoder's guesses at the faces of ``latents`` (N, D)."""
        generator, options = self.data.generator, self.options
        with torch.no_grad():
            faces = generator(latents)  # (N, C, S, S) in [-1, 1]
            targets = None if self.data.classifier is None or not options.feature_weight else \
                [f.detach() for f in activations(self.data.classifier, faces)]
        with speed.autocast(self.device, self.step_settings):
            guess = self.encoder(speed.layout(faces, self.step_settings)).float()  # (N, D)
        loss = options.latent_weight * (guess - latents).square().mean(1)
        if options.pixel_weight or targets is not None:
            drawn = generator(guess)
            loss = loss + options.pixel_weight * (drawn - faces).square().flatten(1).mean(1)
            if targets is not None:
                loss = loss + options.feature_weight * feature_distance(self.data.classifier, drawn, targets)
        return loss

    def train_step(self, latents: torch.Tensor) -> None:
        """One Adam step on a batch of the generator's faces."""
        self.encoder.train()
        loss = self.losses(latents).mean()
        self._optimizer_step(loss)

    def _readings(self) -> dict[str, float]:
        return self._loss_reading(self.loss_sum.item())

    def _finish_epoch(self, seconds: float) -> EncoderEpochReport:
        loss = self.read_progress()["loss"]
        measured = self.validate()
        self._next_epoch(self.loss_sum)
        self.epochs.append({"epoch": self.epoch, "loss": loss, "seconds": round(seconds, 3), "validation": measured})
        self.save_checkpoint()
        return EncoderEpochReport(self.epoch, loss, measured["latent_rmse"], measured["psnr_db"], seconds)

    def validate(self) -> dict[str, float]:
        """How close the encoder's guesses come on the faces of VALIDATION_SEEDS: the latents' RMS error and
        the PSNR (dB, pixels in [0, 1]) of the face each guess draws."""
        latents = noise_for_seeds(VALIDATION_SEEDS, self.config.latent_dim).to(self.device)
        self.encoder.eval()
        with torch.no_grad():
            faces = self.data.generator(latents)
            guess = self.encoder(faces).float()
            mse = ((self.data.generator(guess) - faces) / 2).square().flatten(1).mean(1)
        return {"latent_rmse": round((guess - latents).square().mean().sqrt().item(), 4),
                "psnr_db": round((10 * torch.log10(1 / mse.clamp_min(1e-10))).mean().item(), 2)}

    def step_text(self, readings: dict[str, float]) -> str:
        return f"loss {readings['loss']:.4f}"

    def epoch_text(self, report: EncoderEpochReport) -> str:
        return (f"epoch {report.epoch}/{self.options.epochs}  loss {report.loss:.4f}  validation: latent RMSE "
                f"{report.latent_rmse:.3f}  PSNR {report.psnr_db:.1f} dB  {report.seconds:.1f}s")

    # ------------------------------------------------------- the checkpoint (latentctl.train.checkpoint)

    kind = KIND
    options_type = EncoderOptions
    config_type = EncoderConfig
    config_key = "encoder"
    saved_network = "encoder"

    def networks(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"optimizer": self.optimizer}

    def data_fingerprint(self) -> dict[str, Any]:
        return {"name": f"faces of {Path(self.data.record['path']).name}", **self.data.record}

    def model_labels(self) -> list[str]:
        return []

    def _own_training(self) -> dict[str, Any]:
        last = self.epochs[-1]["validation"] if self.epochs else {}
        return {"generator": self.data.record,
                "classifier": None if self.data.classifier_dir is None else str(self.data.classifier_dir),
                "options": asdict(self.options), **({"validation": last} if last else {})}

    def _own_state(self) -> dict[str, Any]:
        return {"generator": self.data.record,
                "classifier": None if self.data.classifier_dir is None else str(self.data.classifier_dir)}

    def _state_tensors(self, gathered: None) -> dict[str, torch.Tensor]:
        return {"loss_sum": self.loss_sum}

    @classmethod
    def read_state(cls, out_dir: Path) -> dict[str, Any]:
        state = super().read_state(out_dir)
        if state.get("kind") != KIND:
            raise LatentctlError(f"{out_dir} holds a {state.get('kind')} training run, not an encoder's",
                                 hint="pass --out with an encoder run, or --force to start over there")
        return state

    @classmethod
    def _rebuild(cls, state: dict[str, Any], config: EncoderConfig, options: EncoderOptions, data: GeneratorData,
                 out_dir: Path, device: torch.device, dist: Distributed) -> EncoderTrainer:
        if (state.get("generator") or {}).get("sha256") != data.record["sha256"]:
            raise LatentctlError(f"the run in {out_dir} trains an encoder for the generator "
                                 f"{state.get('generator', {}).get('path')}, whose weights are not those of "
                                 f"{data.record['path']}", hint="start over with --force")
        return cls(config, options, data, out_dir, device, dist=dist)

    def _restore(self, state: dict[str, Any], tensors: dict[str, torch.Tensor], planned_epochs: int,
                 warn: Callable[[str], None]) -> None:
        self.loss_sum = tensors["loss_sum"].to(self.device)
        self.logged = (self.step_in_epoch, self.loss_sum.item())


def _check_generator(config: EncoderConfig, data: GeneratorData) -> None:
    network = data.config
    if (config.image_size, config.channels, config.latent_dim) != (network.image_size, network.channels,
                                                                   network.latent_dim):
        raise LatentctlError(f"the encoder reads {config.image_size}px images into {config.latent_dim} latents, the "
                             f"generator draws {network.image_size}px from {network.latent_dim}")
