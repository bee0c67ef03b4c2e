"""``latentctl eval steer``: how well steering works, read by an independent judge classifier."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from latentctl import console
from latentctl.cli import options as flags
from latentctl.eval.steering import SteerEvalOptions as Defaults

app = typer.Typer(help="Measure what the models do.", no_args_is_help=True)


@app.command("steer")
def steer(
    judge: Annotated[Path, typer.Option("--judge", help="A second attribute classifier, trained independently "
                                        "(another --seed or --width), that reads the results. Never the one "
                                        "that steers.", show_default=False)],
    model: flags.FaceModel = None,
    classifier: flags.Classifier = None,
    attribute: Annotated[list[str] | None, typer.Option("--attribute", help="Target attribute (repeatable) "
                                                        f"[default: {', '.join(Defaults.attributes)}].",
                                                        show_default=False, callback=flags.celeba_names)] = None,
    faces: Annotated[int, typer.Option("--faces", min=1, max=10_000, help="Faces per attribute, among those the "
                                       "judge reads as not having it.")] = Defaults.faces,
    steps: flags.Steps = Defaults.steps, strength: flags.Strength = Defaults.strength,
    keep_others: flags.KeepOthers = Defaults.keep_others, until: flags.Until = Defaults.until,
    views: flags.Views = Defaults.views, reach: flags.Reach = Defaults.reach, samples: flags.Samples = Defaults.samples,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also draw the table as a bar chart (PNG).",
                                              dir_okay=False)] = None,
    device: flags.Device = "auto", seed: flags.Seed = Defaults.seed, json_output: flags.Json = False,
) -> None:
    """Steer faces towards each attribute with both methods, with and without --keep-others, and score it.

    The methods are gradient and direction; for a model trained with --condition attributes, gradient and label
    (which turns the attribute inputs alone). On such a model keep-others also holds the other attributes' inputs;
    without it they follow the target as the data correlates them.

    For each target attribute, on faces the judge reads as not having it: success (the judge reads it at the last
    frame), others (mean absolute change of the judge's probabilities of the other attributes it reads well:
    validation balanced accuracy >= 0.8) and moved (mean absolute pixel change, 0 to 1). The steering classifier's
    own success is shown beside the judge's: a gap means the steering fooled it. With --until, each face stops where
    the steering classifier reads the target past P, as `steer --until` does.

    Examples:

        latentctl train classifier --seed 1 --width 24 --out judge
        latentctl eval steer --judge judge
        latentctl eval steer --judge judge --attribute Smiling --faces 200 --plot steer-eval.png --json
        latentctl eval steer --judge judge --until 0.99
    """
    from latentctl.eval.steering import evaluate_steer

    evaluation = evaluate_steer(judge=judge, plot=plot, model=model, classifier=classifier, device=device,
                                options=Defaults(attributes=tuple(attribute or Defaults.attributes), faces=faces,
                                                 steps=steps, strength=strength, keep_others=keep_others, until=until,
                                                 views=views, reach=reach, samples=samples, seed=seed))
    evaluation.print_table()
    if plot is not None:
        console.info(f"wrote {plot}")
    if json_output:
        console.emit_json({"command": "eval steer", **evaluation.to_json()})
    elif plot is not None:
        console.emit_path(plot)

