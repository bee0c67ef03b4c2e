"""``latentctl classify``: a trained attribute classifier's probabilities for face images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from latentctl import console
from latentctl.cli.options import Classifier, Device, Json

COLUMNS_PER_TABLE = 6  # images side by side; more are printed as further tables


def register(app: typer.Typer) -> None:
    app.command("classify")(classify)


def classify(
    images: Annotated[list[Path], typer.Argument(show_default=False, help="Face images of any size (JPEG, PNG, "
                                                 "...); each is cropped and resized as the classifier's training "
                                                 "images were.")],
    classifier: Classifier = None,
    top: Annotated[int | None, typer.Option("--top", min=1, help="Show only each image's K most likely "
                                            "attributes [default: all].")] = None,
    device: Device = "auto", json_output: Json = False,
) -> None:
    """Print the probability of each of CelebA's 40 attributes for each image.

    A table on stderr (attributes as rows, images as columns; likely ones in bold), or with --json one
    document on stdout: {"images": [{"path": ..., "probabilities": {attribute: p}}]}.

    Examples:

        latentctl classify face.jpg
        latentctl classify *.png --top 5
        latentctl classify face.jpg --json | jq '.images[0].probabilities.Smiling'
    """
    from latentctl.eval.reading import classify as read_images

    read = read_images(images, classifier=classifier, device=device, top=top)
    if json_output:
        console.emit_json({"command": "classify", **read.to_json()})
        return
    results = read.images()
    for start in range(0, len(results), COLUMNS_PER_TABLE):
        part = [result["probabilities"] for result in results[start:start + COLUMNS_PER_TABLE]]
        console.print_table("" if start else f"attribute probabilities ({read.classifier_dir})",
                            ["attribute", *(path.name for path in read.paths[start:start + COLUMNS_PER_TABLE])],
                            [[name, *(f"[bold]{row[name]:.2f}[/]" if row[name] >= 0.5 else f"{row[name]:.2f}"
                                      for row in part)] for name in read.shown()])
