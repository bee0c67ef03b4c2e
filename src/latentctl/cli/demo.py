"""``latentctl demo``: latentctl.demo.run, its training progress, and a table of what it made."""

from pathlib import Path
from typing import Annotated

import typer

from latentctl import console
from latentctl.cli.options import Device, Json, Seed
from latentctl.cli.render import TrainingProgress
from latentctl.demo import DEMO_EPOCHS, DEMO_FACE_EPOCHS, DEMO_OUT, Part, run


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    out: Annotated[Path, typer.Option(file_okay=False, help="Folder for everything the demo makes.")] = DEMO_OUT,
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs of the digit cGAN.")] = DEMO_EPOCHS,
    face_epochs: Annotated[int, typer.Option(min=1, help="Training epochs of the face GAN.")] = DEMO_FACE_EPOCHS,
    only: Annotated[Part, typer.Option(help="Run one part: digits or faces.")] = "all",
    device: Device = "auto", seed: Seed = 0, json_output: Json = False,
) -> None:
    """Run the digit and face workflows offline: synthetic data, small models, samples, walks, scores.

    Needs no dataset, no network and no GPU. Digits: a conditional GAN, a grid with one row per digit, an
    interpolation GIF, a 1->7 morph, scored by an independent digit classifier. Faces: synthetic CelebA, an
    attribute classifier and a face GAN at 32x32, a grid and a walk, the attribute mix of the generated faces
    against the data's, and a strip of four faces steered towards Male. Writes everything into --out and
    prints a summary table.

    Examples:

        latentctl demo
        latentctl demo --only faces --out /tmp/demo --json
        latentctl demo --out /tmp/demo --device cuda --json
    """
    with TrainingProgress() as progress:
        result = run(out, epochs=epochs, face_epochs=face_epochs, only=only, device=device, seed=seed,
                     on_event=progress.update)
    if not result.complete:  # stopped by Ctrl-C, which run() said how to continue
        raise typer.Exit(130)
    console.print_table("latentctl demo", ["what", "where"], [[k, v] for k, v in result.files.items()])
    console.info(result.summary())
    if json_output:
        return console.emit_json({"command": "demo", **result.to_json()})
    console.emit_path(result.files.get("samples") or result.files["face_samples"])
