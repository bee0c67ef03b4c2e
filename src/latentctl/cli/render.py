"""Rendering that several commands share: progress fed by the library's callbacks."""

from __future__ import annotations

from collections.abc import Callable


class RunningTotal:
    """Feeds a progress bar's ``advance(amount)`` from callbacks that report how much is done so far."""

    def __init__(self, advance: Callable[[int], None]) -> None:
        self.advance = advance
        self.done = 0

    def update(self, done: int, total: int | None = None) -> None:
        amount, self.done = done - self.done, done
        self.advance(amount)  # negative when a download restarts from zero
