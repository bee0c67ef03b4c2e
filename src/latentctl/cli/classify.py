"""``latentctl classify``: a trained attribute classifier's probabilities for face images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from latentctl import console, lookup
from latentctl.cli.options import Device, Json

COLUMNS_PER_TABLE = 6  # images side by side; more are printed as further tables


def register(app: typer.Typer) -> None:
    app.command("classify")(classify)


def classify(
    images: Annotated[list[Path], typer.Argument(help="Face images of any size (JPEG, PNG, ...); each is cropped "
                                                 "and resized as the classifier's training images were.",
                                                 show_default=False)],
    classifier: Annotated[Path | None, typer.Option("--classifier", help="Classifier folder, a name from "
                                                    "'latentctl models list', or a Hub repo user/repo[@rev] "
                                                    "[default: classifier-celeba].")] = None,
    top: Annotated[int | None, typer.Option("--top", min=1, help="Show only each image's K most likely "
                                            "attributes [default: all].")] = None,
    device: Device = "auto",
    json_output: Json = False,
) -> None:
    """Print the probability of each of CelebA's 40 attributes for each image.

    A table on stderr (attributes as rows, images as columns; likely ones in bold), or with --json one
    document on stdout: {"images": [{"path": ..., "probabilities": {attribute: p}}]}.

    Examples:

        latentctl classify face.jpg
        latentctl classify *.png --top 5
        latentctl classify face.jpg --json | jq '.images[0].probabilities.Smiling'
    """
    from latentctl.device import resolve_device
    from latentctl.store import load_model
    from latentctl.train.classifier import classify_images

    model_dir = lookup.resolve_model(classifier, "classifier-celeba")
    model, config = load_model(model_dir, "classifier", resolve_device(device), option="--classifier")
    probabilities = classify_images(model, config, images).tolist()  # (N, A)
    results = []
    for path, row in zip(images, probabilities, strict=True):
        result = {"path": str(path), "probabilities": {name: round(p, 4) for name, p in zip(config.labels, row,
                                                                                            strict=True)}}
        if top is not None:
            result["top"] = sorted(config.labels, key=lambda name: -result["probabilities"][name])[:top]
        results.append(result)
    if json_output:
        console.emit_json({"command": "classify", "classifier": str(model_dir), "images": results})
        return
    shown = [name for name in config.labels if top is None or any(name in result["top"] for result in results)]
    for start in range(0, len(results), COLUMNS_PER_TABLE):
        part = results[start:start + COLUMNS_PER_TABLE]
        rows = [[name, *(_cell(result["probabilities"][name]) for result in part)] for name in shown]
        console.print_table("" if start else f"attribute probabilities ({model_dir})",
                            ["attribute", *(Path(result["path"]).name for result in part)], rows)


def _cell(probability: float) -> str:
    return f"[bold]{probability:.2f}[/]" if probability >= 0.5 else f"{probability:.2f}"
