"""The epoch loop every latentctl trainer shares: what happens between steps, not in them.

Between steps it stops where Ctrl-C asked and saves the run there (``--resume`` continues from that step),
reads the losses only every ``log_every`` steps and stops on NaN/inf before anything is saved, and under
torchrun stops every rank at the same step. Trainers subclass ``EpochLoop`` and provide the step itself."""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import torch

from latentctl.errors import LatentctlError

# callback(event, info): "epoch_start" {epoch, epochs, steps, step}, "step" {step, <readings>, text},
# "epoch_end" {report, text}; each text is what a person reads of it (step_text, epoch_text)
Callback = Callable[[str, dict[str, Any]], None]

DIVERGED_HINT = "start over with --force and a lower --lr or another --seed"


class EpochLoop(ABC):
    """Epochs of steps, a stop that saves, divergence checks and a stop all ranks agree on.

    Subclasses have ``options`` (``epochs``, ``batch_size``, ``log_every``), ``dist`` and ``out_dir``, and
    provide :meth:`_epoch_plan`, ``train_step``, :meth:`_readings`, :meth:`_finish_epoch`,
    :meth:`_gather_for_checkpoint`, :meth:`_write_checkpoint`, :meth:`step_text` and :meth:`epoch_text`.
    """

    options: Any
    dist: Any
    out_dir: Any

    def _start_loop(self) -> None:
        self.epoch = 0  # epochs completed
        self.step_in_epoch = 0  # batches done in the current epoch
        self.global_step = 0
        self.seconds = 0.0
        self.stop_requested = False  # on this rank (Ctrl-C)
        self.stop_agreed = False  # by every rank, at the last loss read (several processes only)
        self.shared_at_step = -1  # global step of the last averaging of the loss sums over the ranks
        self.saving = False  # a checkpoint is being written: an abort now would mix old and new files

    # ------------------------------------------------------------------------------ what subclasses give

    @property
    @abstractmethod
    def steps_per_epoch(self) -> int:
        """Batches per epoch (a ragged last batch is dropped)."""

    @abstractmethod
    def _examples(self) -> tuple[str, int]:
        """What one epoch goes through, for the too-small error: ("the dataset", 1234)."""

    @abstractmethod
    def _epoch_plan(self) -> tuple[torch.Tensor, ...]:
        """This epoch's per-example tensors (image order first), each cut into the steps' batches."""

    @abstractmethod
    def train_step(self, *batch: torch.Tensor) -> None:
        """One update on this rank's share of the step's batches (one per tensor of the plan)."""

    @abstractmethod
    def _readings(self) -> dict[str, float]:
        """Read this epoch's running losses from the device, averaged over the ranks by :meth:`_share_progress`."""

    @abstractmethod
    def _finish_epoch(self, seconds: float) -> Any:
        """Close the epoch (validate, sample, save) and return its report."""

    def _optimizer_step(self, loss: torch.Tensor) -> None:
        """For a trainer with one loss and one optimizer: step on ``loss`` (a scalar), add it to the epoch's
        running ``loss_sum`` (on the device: no host sync) and count the step."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.loss_sum += loss.detach()
        self.global_step += 1
        self.step_in_epoch += 1

    def _loss_reading(self, total: float) -> dict[str, float]:
        """For a trainer with one loss: record in ``history`` the mean loss of the steps since the last read
        (``logged``: step in epoch and loss sum then), and return the epoch's mean loss so far; ``total`` is
        the loss summed over this epoch's steps."""
        window = self.step_in_epoch - self.logged[0]
        if window > 0:
            self.history["step"].append(self.global_step)
            self.history["loss"].append((total - self.logged[1]) / window)
        self.logged = (self.step_in_epoch, total)
        return {"loss": total / max(self.step_in_epoch, 1)}

    def _next_epoch(self, sums: torch.Tensor) -> None:
        """Count an epoch done and start the next: the step count, the running loss ``sums`` and what was last
        read of them back at zero, and the data stream's state kept as the new epoch's start."""
        self.epoch += 1
        self.step_in_epoch = 0
        sums.zero_()
        self.logged = (0,) + (0.0,) * (len(self.logged) - 1)
        self.epoch_start_data_state = self.data_rng.get_state()

    def _gather_for_checkpoint(self) -> Any:
        """Collective work before rank 0 writes (buffers in sync, per-rank states); run on every rank."""
        return None

    @abstractmethod
    def _write_checkpoint(self, gathered: Any) -> None:
        """Write the training state, the model and its config (rank 0)."""

    @abstractmethod
    def step_text(self, readings: dict[str, float]) -> str:
        """The running losses as a progress bar shows them beside itself."""

    @abstractmethod
    def epoch_text(self, report: Any) -> str:
        """The line that sums up a finished epoch."""

    # ------------------------------------------------------------------------------------------ the loop

    def train(self, callback: Callback | None = None) -> bool:
        """Train until ``options.epochs`` are done; return False if stopped early by ``stop_requested``."""
        notify = callback or (lambda event, info: None)
        batch = self.options.batch_size
        if self.steps_per_epoch == 0:
            what, count = self._examples()
            raise LatentctlError(f"{what} has {count} images, fewer than one batch of {batch}",
                                 hint="lower --batch-size")
        while self.epoch < self.options.epochs:
            plan = self._epoch_plan()
            notify("epoch_start", {"epoch": self.epoch + 1, "epochs": self.options.epochs,
                                   "steps": self.steps_per_epoch, "step": self.step_in_epoch})
            started = time.perf_counter()
            while self.step_in_epoch < self.steps_per_epoch:
                if self.stopping:
                    self.seconds += time.perf_counter() - started
                    self.read_progress()  # never save a state that already diverged
                    self.save_checkpoint()
                    return False
                window = slice(self.step_in_epoch * batch, (self.step_in_epoch + 1) * batch)
                self.train_step(*(self.dist.shard(values[window]) for values in plan))
                if self.global_step % self.options.log_every == 0:
                    readings = self.read_progress()
                    notify("step", {"step": self.step_in_epoch, **readings, "text": self.step_text(readings)})
            seconds = time.perf_counter() - started
            self.seconds += seconds
            report = self._finish_epoch(seconds)
            notify("epoch_end", {"report": report, "text": self.epoch_text(report)})
        return True

    @property
    def stopping(self) -> bool:
        """Whether to stop now: where Ctrl-C asked, or with several processes where they last agreed to."""
        return self.stop_agreed if self.dist.enabled else self.stop_requested

    def _share_progress(self, sums: torch.Tensor) -> torch.Tensor:
        """Return the loss sums averaged over the ranks, agreeing on whether to stop, at most once a step
        (several processes only). Every rank then holds the same sums, which a checkpoint can save."""
        if self.dist.enabled and self.shared_at_step != self.global_step:
            sums, self.stop_agreed = self.dist.mean_and_stop(sums, self.stop_requested)
            self.shared_at_step = self.global_step
        return sums

    def read_progress(self) -> dict[str, float]:
        """Return this epoch's mean losses (one host read); raise if any is NaN or infinite."""
        readings = self._readings()
        if not all(math.isfinite(value) for value in readings.values()):
            shown = ", ".join(f"{name}={value}" for name, value in readings.items() if name.startswith("loss"))
            raise LatentctlError(f"training diverged at epoch {self.epoch + 1}, step {self.step_in_epoch} "
                                 f"({shown}); the last good checkpoint in {self.out_dir} is kept",
                                 hint=DIVERGED_HINT)
        return readings

    def save_checkpoint(self) -> None:
        """Write the run's files atomically, rank 0 only; the other ranks wait until they are complete."""
        gathered = self._gather_for_checkpoint()
        if self.dist.is_main:
            self.saving = True
            try:
                self._write_checkpoint(gathered)
            finally:
                self.saving = False
        self.dist.barrier()
