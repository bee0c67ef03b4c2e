"""``latentctl eval steer``: how well steering works, read by an independent judge classifier."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from latentctl import console, lookup
from latentctl.cli.options import Device, Json, Seed
from latentctl.cli.steer import Classifier, FaceModel, KeepOthers, Reach, Samples, Steps, Strength, Until, Views
from latentctl.errors import LatentctlError
from latentctl.latent import DEFAULT_KEEP_OTHERS, DEFAULT_STRENGTH, DEFAULT_VIEWS

app = typer.Typer(help="Measure what the models do.", no_args_is_help=True)

DEFAULT_ATTRIBUTES = ["Male", "Smiling", "Eyeglasses"]


@app.command("steer")
def steer(
    judge: Annotated[Path, typer.Option("--judge", help="A second attribute classifier, trained independently "
                                        "(another --seed or --width), that reads the results. Never the one "
                                        "that steers.", show_default=False)],
    model: FaceModel = None,
    classifier: Classifier = None,
    attribute: Annotated[list[str] | None, typer.Option("--attribute", help="Target attribute (repeatable) "
                                                        "[default: Male, Smiling, Eyeglasses].",
                                                        show_default=False)] = None,
    faces: Annotated[int, typer.Option("--faces", min=1, max=10_000, help="Faces per attribute, among those the "
                                       "judge reads as not having it.")] = 64,
    steps: Steps = 40,
    strength: Strength = DEFAULT_STRENGTH,
    keep_others: KeepOthers = DEFAULT_KEEP_OTHERS,
    until: Until = None,
    views: Views = DEFAULT_VIEWS,
    reach: Reach = 1.0,
    samples: Samples = 10_000,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also draw the table as a bar chart (PNG).",
                                              dir_okay=False)] = None,
    device: Device = "auto",
    seed: Seed = 0,
    json_output: Json = False,
) -> None:
    """Steer faces towards each attribute with both methods, with and without --keep-others, and score it.

    The methods are gradient and direction; for a model trained with --condition attributes, gradient and
    label (which turns the attribute inputs alone). On such a model keep-others also holds the other
    attributes' inputs; without it they follow the target as the data correlates them.

    For each target attribute, on faces the judge reads as not having it: success (the judge reads it at
    the last frame), others (mean absolute change of the judge's probabilities of the other attributes it
    reads well: validation balanced accuracy >= 0.8) and moved (mean absolute pixel change, 0 to 1). The
    steering classifier's own success is shown beside the judge's: a gap means the steering fooled it.
    With --until, each face stops where the steering classifier reads the target past P, as `steer
    --until` does.

    Examples:

        latentctl train classifier --seed 1 --width 24 --out judge
        latentctl eval steer --judge judge
        latentctl eval steer --judge judge --attribute Smiling --faces 200 --plot steer-eval.png --json
        latentctl eval steer --judge judge --until 0.99
    """
    from latentctl import images as image_io
    from latentctl.cli.steer import check_reach, load_session, session_directions
    from latentctl.latent.attributes import check_pair
    from latentctl.latent.steer import SteerSettings
    from latentctl.latent.steer_eval import evaluate_steering, readable_attributes
    from latentctl.store import load_model

    if plot is not None:
        image_io.check_writable(plot)
    session = load_session(model, classifier, device, attribute or DEFAULT_ATTRIBUTES, None)
    check_reach(reach, session)
    judge_dir = lookup.resolve_model(judge, "")
    judge_model, judge_config = load_model(judge_dir, "classifier", session["device"], option="--judge")
    check_pair(session["config"], judge_config, session["model_dir"], judge_dir, option="--judge")
    if _same_weights(judge_dir, session["classifier_dir"]):
        raise LatentctlError("the judge is the classifier that steers: it would grade its own homework",
                             hint="train a second classifier ('latentctl train classifier --seed 1 --out judge') "
                                  "and pass it with --judge")
    targets = [t.name for t in session["targets"]]
    missing = [name for name in targets if name not in judge_config.labels]
    if missing:
        raise LatentctlError(f"the judge {judge_dir} has no attribute {', '.join(missing)}",
                             hint="use a judge trained on the same attributes")
    readable = readable_attributes(judge_config.labels, judge_config.training.get("validation", {})
                                   .get("balanced_accuracy"))
    conditioned = session["conditioned"]  # conditioned on attributes: label and gradient, no directions
    directions = None if conditioned else session_directions(session, samples)
    methods = ("gradient", "label") if conditioned else ("gradient", "direction")
    settings = SteerSettings(steps=steps, strength=strength, until=until, frames=2, views=views,
                             seed=seed)  # first, last frame
    console.info(f"steering {faces} faces towards each of {', '.join(targets)}: {' and '.join(methods)}, "
                 f"keep-others {keep_others:g} and 0, judged by {judge_dir} on {len(readable)} attributes it reads")
    scores = evaluate_steering(session["generator"], session["classifier"], session["names"], judge_model,
                               judge_config.labels, readable, session["config"].latent_dim, targets, settings,
                               keep_values=(keep_others, 0.0) if keep_others > 0 else (0.0,),
                               methods=methods, directions=directions, faces=faces, seed=seed,
                               generator_labels=session["config"].labels if conditioned else None, reach=reach)
    for name in dict.fromkeys(s.attribute for s in scores if s.faces == 0):
        console.warn(f"the judge reads every face it searched as having {name}, so none was steered towards it "
                     f"(its rows are empty); a judge this sure may be undertrained, or the GAN always draws it")
    rows = [[s.attribute, s.method, f"{s.keep_others:g}", s.faces, _cell(s.success, "{:.0%}"),
             _cell(s.steerer_success, "{:.0%}"), _cell(s.others, "{:.3f}"), _cell(s.moved, "{:.3f}"),
             f"{s.seconds:.1f}s"] for s in scores]
    console.print_table("steering, read by the judge", ["attribute", "method", "keep-others", "faces", "success",
                                                        "steerer says", "others", "moved", "time"], rows)
    if plot is not None:
        image_io.plot_bars(_panels(scores), plot, title=f"steering judged by {judge_dir.name}")
        console.info(f"wrote {plot}")
    if json_output:
        console.emit_json({"command": "eval steer", "model": str(session["model_dir"]),
                           "classifier": str(session["classifier_dir"]), "judge": str(judge_dir),
                           "readable": readable, "settings": {"steps": steps, "strength": strength,
                                                              "keep_others": keep_others, "until": until,
                                                              "views": views, "reach": reach, "faces": faces},
                           "plot": None if plot is None else str(plot),
                           "scores": [s.to_dict() for s in scores]})
    elif plot is not None:
        console.emit_path(plot)


def _cell(value: float | None, form: str) -> str:
    return "-" if value is None else form.format(value)


def _panels(scores: list) -> dict[str, dict[str, dict[str, float]]]:
    panels: dict[str, dict[str, dict[str, float]]] = {"success (judge)": {}, "change of the other attributes": {}}
    for score in scores:
        if score.faces == 0:
            continue
        series = f"{score.method}, keep-others {score.keep_others:g}"
        panels["success (judge)"].setdefault(score.attribute, {})[series] = score.success
        panels["change of the other attributes"].setdefault(score.attribute, {})[series] = score.others
    return panels


def _same_weights(first: Path, second: Path) -> bool:
    from latentctl.files import file_sha256
    from latentctl.store import WEIGHTS_FILE

    return file_sha256(Path(first) / WEIGHTS_FILE) == file_sha256(Path(second) / WEIGHTS_FILE)
