"""Rendering that several commands share: a result on stdout, and progress fed by the library's callbacks."""

from __future__ import annotations

from collections.abc import Callable
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
