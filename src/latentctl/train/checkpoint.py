"""A run in a model folder: the checkpoint every trainer writes, and the resume that rebuilds it bit for bit.

A checkpoint is, each file written atomically and in this order: the training state (every network's,
optimiser's and data order's tensors in training_state.safetensors; the loop's counters, the settings and the
history in training_state.json), then the model through ``store`` (model.safetensors, then config.json), so
a folder with a config.json holds a whole model. ``CheckpointedLoop.resume`` reads it back into a trainer
exactly as it was saved. A trainer names its networks and optimisers and adds what is its own (a GAN's noise
streams, the classifier's preprocessing); the rest is here, once.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from latentctl import files, store
from latentctl.errors import LatentctlError
from latentctl.train import speed
from latentctl.train.distributed import SINGLE, Distributed
from latentctl.train.loop import EpochLoop


class CheckpointedLoop(EpochLoop):
    """An epoch loop that checkpoints into ``out_dir`` and resumes from it.

    Subclasses set the class attributes below, ``kind``, ``config`` (a network config with ``to_dict``) and
    ``step_settings``, and provide :meth:`networks`, :meth:`optimizers`, :meth:`_state_tensors`,
    :meth:`_own_state`, :meth:`_own_training`, :meth:`_restore` and :meth:`_rebuild`.
    """

    options_type: ClassVar[type]  # the trainer's options dataclass, saved as the state's "options"
    config_type: ClassVar[type]  # the network's config dataclass, saved under config_key
    config_key: ClassVar[str]
    saved_network: ClassVar[str]  # the one of networks() that is the model
    # what runs saved before an option existed ran with
    legacy_options: ClassVar[dict[str, Any]] = {"precision": "fp32"}

    kind: str
    config: Any
    device: torch.device
    step_settings: speed.StepSettings

    # ------------------------------------------------------------------------------ what subclasses give

    @abstractmethod
    def networks(self) -> dict[str, nn.Module]:
        """The networks the state holds, by the prefix of their tensors' names."""

    @abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The optimisers the state holds, by their key."""

    @abstractmethod
    def data_fingerprint(self) -> dict[str, Any]:
        """What the model records of its training data (name, size, content hash)."""

    @abstractmethod
    def model_labels(self) -> list[str]:
        """The labels config.json lists: the classes or attributes the model takes or reads."""

    @abstractmethod
    def _state_tensors(self, gathered: Any) -> dict[str, torch.Tensor]:
        """The trainer's own tensors of the state, after the data order's (``gathered``: see
        :meth:`_gather_for_checkpoint`)."""

    @abstractmethod
    def _own_state(self) -> dict[str, Any]:
        """The trainer's own entries of training_state.json, after the network's config."""

    @abstractmethod
    def _own_training(self) -> dict[str, Any]:
        """The trainer's own entries of config.json's training record, after the dataset's."""

    @classmethod
    @abstractmethod
    def _rebuild(cls, state: dict[str, Any], config: Any, options: Any, data: Any, out_dir: Path,
                 device: torch.device, dist: Distributed) -> CheckpointedLoop:
        """A fresh trainer for a saved run, before its tensors are read back."""

    @abstractmethod
    def _restore(self, state: dict[str, Any], tensors: dict[str, torch.Tensor], planned_epochs: int,
                 warn: Callable[[str], None]) -> None:
        """Read back the trainer's own part of the state (the loop's counters are back already)."""

    # ------------------------------------------------------------------------------------------ writing

    def model_config(self) -> store.ModelConfig:
        """The model's config.json: its architecture and how it was trained."""
        channels = self.config.channels
        return store.ModelConfig(
            kind=self.kind, network=self.config, labels=self.model_labels(),
            normalization={"mean": [0.5] * channels, "std": [0.5] * channels},
            training={"epochs": self.epoch, "steps": self.global_step,
                      "images_seen": self.global_step * self.options.batch_size,
                      "seconds": round(self.seconds, 2), "device": str(self.device),
                      "world_size": self.dist.world_size, **self.step_settings.summary(), "torch": torch.__version__,
                      "dataset": self.data_fingerprint(), **self._own_training(),
                      "complete": self.epoch >= self.options.epochs})

    def _write_checkpoint(self, gathered: Any) -> None:
        """Write the training state, then the model, then config.json; each file atomically."""
        tensors: dict[str, torch.Tensor] = {}
        for prefix, module in self.networks().items():
            tensors.update({f"{prefix}.{k}": v for k, v in module.state_dict().items()})
        documents = {}
        for key, optimizer in self.optimizers().items():
            optimizer_tensors, documents[key] = store.optimizer_to_tensors(optimizer, key)
            tensors.update(optimizer_tensors)
        tensors["rng.data_epoch_start"] = self.epoch_start_data_state
        tensors.update(self._state_tensors(gathered))
        files.save_tensors(self.out_dir / store.STATE_TENSORS_FILE, tensors)
        files.write_json(self.out_dir / store.STATE_JSON_FILE, {
            "kind": self.kind, "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step, "seconds": self.seconds, "world_size": self.dist.world_size,
            "precision": self.step_settings.precision, "options": asdict(self.options),
            self.config_key: self.config.to_dict(), **self._own_state(), "dataset": self.data_fingerprint(),
            "history": self.history, "epochs": self.epochs, **documents})
        store.save_model(self.out_dir, self.model_config(), self.networks()[self.saved_network])

    # ------------------------------------------------------------------------------------------ resuming

    @classmethod
    def read_state(cls, out_dir: Path) -> dict[str, Any]:
        """Return ``out_dir``'s training_state.json."""
        if not (out_dir / store.STATE_JSON_FILE).is_file():
            raise LatentctlError(f"no training state to resume in {out_dir}",
                                 hint="train without --resume first, or pass --out to the run's folder")
        return files.read_json(out_dir / store.STATE_JSON_FILE)

    @classmethod
    def resume(cls, out_dir: Path, data: Any, device: torch.device, epochs: int | None = None,
               warn: Callable[[str], None] = lambda message: None, dist: Distributed = SINGLE) -> Any:
        """Rebuild a trainer from ``out_dir``'s checkpoint, exactly as it was when saved, on ``data``; with
        ``epochs``, to train that many epochs in all."""
        out_dir = Path(out_dir)
        state = cls.read_state(out_dir)
        try:
            option_names = {f.name for f in fields(cls.options_type)}
            saved = {**cls.legacy_options, **state["options"]}
            options = cls.options_type(**{k: v for k, v in saved.items() if k in option_names})
            config = cls.config_type(**state[cls.config_key])
        except (KeyError, TypeError, ValueError) as error:
            raise LatentctlError(f"{out_dir / store.STATE_JSON_FILE} is damaged ({error})",
                                 hint="start over with --force") from None
        planned = options.epochs
        if epochs is not None:
            options.epochs = epochs
        trainer = cls._rebuild(state, config, options, data, out_dir, device, dist)
        speed.warn_if_precision_changed(state.get("precision"), trainer.step_settings, warn)
        if state.get("dataset", {}).get("sha256") != trainer.data_fingerprint().get("sha256"):
            warn("the dataset differs from the one this run started on; resuming on the new data")
        tensors = files.load_tensors(out_dir / store.STATE_TENSORS_FILE)
        for prefix, module in trainer.networks().items():
            part = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
            store.load_state_strict(module, part, out_dir / store.STATE_TENSORS_FILE)
        for key, optimizer in trainer.optimizers().items():
            store.optimizer_from_tensors(optimizer, tensors, state[key], key)
            speed.match_layout(optimizer)
        trainer.epoch_start_data_state = tensors["rng.data_epoch_start"]
        trainer.epoch, trainer.step_in_epoch = state["epoch"], state["step_in_epoch"]
        trainer.global_step, trainer.seconds = state["global_step"], state["seconds"]
        trainer.history, trainer.epochs = state["history"], state["epochs"]
        trainer._restore(state, tensors, planned, warn)
        return trainer
