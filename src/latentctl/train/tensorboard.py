"""Training logs for TensorBoard (``train ... --log-dir DIR``): a callback on a trainer's events that writes
the losses, the learning rate, images/s, FID when measured, and each epoch's sample grid as event files.

PyTorch's own writer (``torch.utils.tensorboard``) does the writing; it needs the ``tensorboard`` package,
the optional extra ``latentctl[tensorboard]``. Steps are global optimiser steps, so a resumed run continues
its curves (events past the resume point, left by the interrupted run, are purged). Whoever makes it
closes ``writer``."""

from __future__ import annotations

import time
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

from latentctl.errors import LatentctlError

INSTALL_HINT = "pip install 'latentctl[tensorboard]' (or pip install tensorboard)"


class TensorBoardLog:
    """A training callback (``latentctl.train.loop.Callback``) writing ``trainer``'s progress into ``log_dir``."""

    def __init__(self, log_dir: Path, trainer: Any) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise LatentctlError("--log-dir needs TensorBoard, which is not installed", hint=INSTALL_HINT) from None
        self.trainer = trainer
        # a resumed run drops the events an interrupted one wrote after its last checkpoint
        self.writer = SummaryWriter(str(log_dir), purge_step=trainer.global_step + 1 if trainer.global_step else None)
        self.last: tuple[int, float] | None = None  # global step and time of the previous step event

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        trainer, step = self.trainer, self.trainer.global_step
        if event == "epoch_start":
            self.last = (step, time.perf_counter())
        elif event == "step":
            for name, value in info.items():
                if name not in ("step", "text") and isinstance(value, (int, float)):
                    self.writer.add_scalar(f"train/{name}", value, step)
            self.writer.add_scalar("train/learning_rate", self.learning_rate(), step)
            now = time.perf_counter()
            if self.last is not None and step > self.last[0]:
                rate = (step - self.last[0]) * trainer.options.batch_size / max(now - self.last[1], 1e-9)
                self.writer.add_scalar("speed/images_per_second", rate, step)
            self.last = (step, now)
        elif event == "epoch_end":
            self.epoch_end(info["report"], step)

    def learning_rate(self) -> float:
        """The rate of the next step: the classifier's schedule, or a GAN's constant rate."""
        rate = getattr(self.trainer, "learning_rate", None)
        return float(rate if rate is not None else self.trainer.options.lr)

    def epoch_end(self, report: Any, step: int) -> None:
        values = {field.name: getattr(report, field.name) for field in fields(report)} if is_dataclass(report) else {}
        for name, value in values.items():
            if name not in ("epoch", "seconds") and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"epoch/{name}", value, step)
        for name in ("fid", "kid"):
            if values.get("fid"):
                self.writer.add_scalar(f"metrics/{name}", values["fid"][name], step)
        path = values.get("sample_path")
        if path is not None and Path(path).is_file():
            import numpy as np
            from PIL import Image

            with Image.open(path) as picture:
                self.writer.add_image("samples", np.asarray(picture.convert("RGB")), step, dataformats="HWC")
        self.writer.flush()
