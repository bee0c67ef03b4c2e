"""Rendering that several commands share: a result on stdout, and progress fed by the library's callbacks."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from latentctl import console


def emit(command: str, result: Any, json_output: bool, *paths: object) -> None:
    """Print a command's result on stdout: with --json, ``result.to_json()`` under the command's name; else the
    paths it wrote, one a line."""
    if json_output:
        console.emit_json({"command": command, **result.to_json()})
    else:
        for path in paths:
            console.emit_path(path)


class RunningTotal:
    """Feeds a progress bar's ``advance(amount)`` from callbacks that report how much is done so far."""

    def __init__(self, advance: Callable[[int], None]) -> None:
        self.advance = advance
        self.done = 0

    def update(self, done: int, total: int | None = None) -> None:
        amount, self.done = done - self.done, done
        self.advance(amount)  # negative when a download restarts from zero


class StageBars(ExitStack):
    """One progress bar per file (bytes) or step, opened as each begins: one live bar at a time."""

    name: str | None = None

    def update(self, name: str, done: int, total: int | None, unit: str = "bytes") -> None:
        if name != self.name:
            self.finish()  # the previous file is finished: its bar goes
            self.bar = RunningTotal(self.enter_context(console.progress(name, total, unit=unit)))
            self.name = name
        self.bar.update(done)

    def finish(self) -> None:
        """Close the current bar (before a message, or when its file is done)."""
        self.close()
        self.name = None


class TrainingProgress:
    """A training run's events (latentctl.train.runs) on stderr: on a terminal a bar while a dataset cache is built
    and one per epoch; everywhere a line per epoch. Feed it ``update``."""

    def __init__(self) -> None:
        self.live, self.preparing, self.bar, self.task = ExitStack(), None, None, None  # the bar on screen, if any

    def __enter__(self) -> TrainingProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Take the bar on screen down."""
        self.live.close()
        self.preparing = self.bar = None

    def update(self, event: str, info: dict[str, Any]) -> None:
        if event == "preparing":
            if self.preparing is None:
                self.preparing = RunningTotal(self.live.enter_context(console.progress("preparing", None))).update
            self.preparing(info["done"])
            if info["done"] >= info["total"]:
                self.close()
        elif event == "epoch_start" and console.interactive():
            if self.bar is None:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

                self.close()  # one live display at a time
                self.bar = self.live.enter_context(Progress(
                    TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    TextColumn("{task.fields[losses]}"), console=console.stderr, transient=True))
            else:
                self.bar.remove_task(self.task)
            self.task = self.bar.add_task(f"epoch {info['epoch']}/{info['epochs']}", total=info["steps"],
                                          completed=info["step"], losses="")
        elif event == "step" and self.bar is not None:
            self.bar.update(self.task, completed=info["step"], losses=info["text"])
        elif event == "epoch_end":
            console.info(info["text"])
        elif event == "end":
            self.close()
