"""Terminal output: messages and progress on stderr (rich), one JSON document on stdout, errors to exit codes.

Standard output is reserved for machine-readable results (``--json``) and for the paths a command
writes, so ``latentctl sample --json out.png | jq`` always parses. Everything meant for a person goes
to stderr: without colours when ``NO_COLOR`` is set, and without colours or bars when stderr is not a
terminal (a pipe, a log file, CI).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table

from latentctl.errors import LatentctlError

stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def info(message: str) -> None:
    """Print a progress or status line for a person (stderr)."""
    stderr.print(message)


def warn(message: str) -> None:
    stderr.print(f"[yellow]warning:[/] {message}")


def print_error(error: LatentctlError) -> None:
    """Print an expected failure as one line, plus one hint line when there is a hint (both as written: brackets
    in them, as in ``pip install 'latentctl[tensorboard]'``, are text, not markup)."""
    from rich.markup import escape

    stderr.print(f"[bold red]error:[/] {escape(error.message)}", markup=True, highlight=False)
    if error.hint:
        stderr.print(f"[dim]hint:[/] {escape(error.hint)}")


def emit_json(document: dict[str, Any]) -> None:
    """Write one JSON document to stdout: the machine-readable result of a command."""
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    sys.stdout.flush()


def emit_path(path: object) -> None:
    """Write a produced file's path to stdout (without ``--json``), one per line, for shell pipelines."""
    sys.stdout.write(f"{path}\n")
    sys.stdout.flush()


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    """Render a table to stderr."""
    table = Table(title=title, title_justify="left", show_edge=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    stderr.print(table)


def interactive() -> bool:
    """True when stderr is a terminal that can show live progress bars."""
    return stderr.is_terminal and not stderr.is_dumb_terminal


@contextmanager
def progress(description: str, total: float | None, unit: str = "", transient: bool = True) -> Iterator[Any]:
    """A rich progress bar on stderr, or a silent stand-in when stderr is not a terminal.

    Yields a callable ``advance(amount=1, **fields)``; the caller never needs to know which one it got.
    """
    if not interactive():
        yield lambda amount=1, **fields: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns: list[Any] = [TextColumn("[bold]{task.description}"), BarColumn()]
    if unit == "bytes":
        columns += [DownloadColumn(), TransferSpeedColumn()]
    else:
        columns += [MofNCompleteColumn()]
    columns += [TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[status]}")]
    with Progress(*columns, console=stderr, transient=transient) as bar:
        task = bar.add_task(description, total=total, status="")

        def advance(amount: float = 1, **fields: Any) -> None:
            status = "  ".join(f"{key} {value}" for key, value in fields.items())
            if status:
                bar.update(task, advance=amount, status=status)
            else:
                bar.update(task, advance=amount)

        yield advance
