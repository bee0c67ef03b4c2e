"""Options shared by several commands, declared once so every command spells them the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def _check_device(value: str) -> str:
    from latentctl.device import DEVICE_PATTERN

    if not DEVICE_PATTERN.match(value.strip().lower()):
        raise typer.BadParameter(f"{value!r} is not a device: use auto, cpu, cuda, cuda:N or mps")
    return value


Device = Annotated[str, typer.Option("--device", callback=_check_device, help="auto, cpu, cuda, cuda:N or mps "
                                     "(auto picks CUDA when present).", rich_help_panel="Runtime")]
Seed = Annotated[int, typer.Option("--seed", min=0, max=2**32 - 1, rich_help_panel="Runtime",
                                   help="Seed for every random choice; same seed, same result.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document describing the result on stdout.",
                                    rich_help_panel="Output")]
DataRoot = Annotated[Path | None, typer.Option("--root", "--data-root",
                                               help="Dataset folder [default: $LATENTCTL_HOME/data/ followed by "
                                               "the dataset name].",
                                               file_okay=False)]
