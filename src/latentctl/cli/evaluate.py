"""``latentctl eval ...``: how well steering works, read by an independent judge classifier; FID and KID."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from latentctl import console
from latentctl.cli import options as flags
from latentctl.cli.render import StageBars, emit
from latentctl.eval.fid import FIDOptions
from latentctl.eval.inversion import InvertEvalOptions as InvertDefaults
from latentctl.eval.separability import SeparabilityOptions
from latentctl.eval.steering import METHODS
from latentctl.eval.steering import SteerEvalOptions as Defaults

app = typer.Typer(help="Measure what the models do.", no_args_is_help=True)
Method = Enum("Method", [(name, name) for name in METHODS], type=str)


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
    method: Annotated[list[Method] | None, typer.Option("--method", show_default=False, help="Score this method "
                      "(repeatable): gradient, direction, component (the SeFa direction that changes the target most) "
                      "or label [default: gradient and direction; gradient and label on a conditioned model].")] = None,
    fit: flags.Fits = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="Also draw the table as a bar chart (PNG).",
                                              dir_okay=False)] = None,
    device: flags.Device = "auto", seed: flags.Seed = Defaults.seed, json_output: flags.Json = False,
) -> None:
    """Steer faces towards each attribute with each method, with and without --keep-others, and score it.

    The methods are gradient and direction; for a model trained with --condition attributes, gradient and label
    (which turns the attribute inputs alone). --method component walks the SeFa direction that changes the target
    most; --fit (repeatable) scores the direction method fitted each way, and prints each boundary's held-out
    accuracy. On such a model keep-others also holds the other attributes' inputs;
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
        latentctl eval steer --judge judge --method direction --method component --fit class-means --fit interfacegan
    """
    from latentctl.eval.steering import evaluate_steer

    evaluation = evaluate_steer(judge=judge, plot=plot, model=model, classifier=classifier, device=device,
                                options=Defaults(attributes=tuple(attribute or Defaults.attributes), faces=faces,
                                                 steps=steps, strength=strength, keep_others=keep_others, until=until,
                                                 views=views, reach=reach, samples=samples, seed=seed,
                                                 methods=tuple(m.value for m in method or ()),
                                                 fits=tuple(f.value for f in fit or ())))
    evaluation.print_table()
    if plot is not None:
        console.info(f"wrote {plot}")
    if json_output:
        console.emit_json({"command": "eval steer", **evaluation.to_json()})
    elif plot is not None:
        console.emit_path(plot)


@app.command("invert")
def invert(
    photos: Annotated[list[Path], typer.Argument(help="Face photos, or folders of them (the first --photos in name "
                                                 "order).", show_default=False)],
    judge: Annotated[Path, typer.Option("--judge", help="A second attribute classifier, trained independently, that "
                                        "reads photos, reconstructions and edits.", show_default=False)],
    model: flags.FaceModel = None, classifier: flags.Classifier = None,
    encoder: Annotated[Path | None, typer.Option("--encoder", show_default=False, help="Also start from this "
                                                 "encoder's guess [default: the model's folder + -encoder, when "
                                                 "there].")] = None,
    no_encoder: Annotated[bool, typer.Option("--no-encoder", help="Random starts only.")] = False,
    attribute: Annotated[list[str] | None, typer.Option(
        "--attribute", help=f"Edit towards this attribute (repeatable) [default: "
        f"{', '.join(InvertDefaults.attributes)}].", show_default=False, callback=flags.celeba_names)] = None,
    count: Annotated[int, typer.Option("--photos", min=1, help="Photos at most.")] = InvertDefaults.photos,
    known: Annotated[int, typer.Option("--known", min=0, help="Faces the GAN draws itself, inverted to see how close "
                                       "the latent comes back (0: none).")] = InvertDefaults.known,
    steps: Annotated[int, typer.Option("--invert-steps", min=0, help="Adam steps of the inversion.")]
    = InvertDefaults.steps,
    starts: Annotated[int, typer.Option("--starts", min=1, help="Random latents tried first.")] = InvertDefaults.starts,
    device: flags.Device = "auto", seed: flags.Seed = InvertDefaults.seed, json_output: flags.Json = False,
) -> None:
    """Invert photos with random starts and with the encoder, then edit them; the judge reads the results.

    Per start: PSNR and mean absolute error of the reconstructions, the share of the judge's readable attributes
    it reads the same on photo and reconstruction, and the time per face; the known-latent test inverts faces the
    GAN drew itself and compares the latents. Then per attribute, on the photos the judge reads as not having
    it: edit success and the change of the others, as 'eval steer' scores them (steer's gradient method).

    Examples:

        latentctl data synth faces --n 64 --seed 4242 --root fresh
        latentctl eval invert fresh/img_align_celeba --judge judge --json
    """
    from latentctl.eval.inversion import evaluate_invert

    evaluation = evaluate_invert(photos, judge=judge, model=model, classifier=classifier, encoder=encoder,
                                 use_encoder=not no_encoder, device=device, options=InvertDefaults(
                                     attributes=tuple(attribute or InvertDefaults.attributes), photos=count,
                                     known=known, steps=steps, starts=starts, seed=seed))
    evaluation.print_tables()
    emit("eval invert", evaluation, json_output)


@app.command("fid")
def fid(
    model: Annotated[Path | None, typer.Option("--model", help="Generator: folder, registered name or user/repo"
                                               "[@rev] [default: gan-celeba].", show_default=False)] = None,
    data: Annotated[str | None, typer.Option("--data", metavar="NAME_OR_FOLDER", show_default=False, help=(
        "Real images: mnist, celeba (at the model's size and crop), an imported folder's NAME, or a folder (MNIST's, "
        "CelebA's or any images) [default: the dataset the model was trained on]."))] = None,
    n: Annotated[int, typer.Option("--n", min=2, help="Generated images, and real ones.")] = FIDOptions.n,
    inception_weights: flags.InceptionWeights = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = FIDOptions.batch_size,
    device: flags.Device = "auto", seed: flags.Seed = FIDOptions.seed, json_output: flags.Json = False,
) -> None:
    """FID and KID of a generator's images against real ones (torch-fidelity's Inception; lower is better).

    The real images' features are cached beside the dataset's prepared cache and reused. KID is the mean over
    100 subsets of 1,000 images (fewer with a smaller --n), with its standard deviation. docs/metrics.md says
    how to compare the numbers.

    Examples:

        latentctl eval fid --model gan-celeba
        latentctl eval fid --model cgan-mnist --n 5000 --json | jq .fid
        latentctl eval fid --data ./my-faces --inception-weights weights-inception-2015-12-05-6726825d.pth
    """
    from latentctl.eval.fid import evaluate_fid

    with StageBars() as bars:
        report = evaluate_fid(model, FIDOptions(n=n, batch_size=batch_size, seed=seed), data=data,
                              inception_weights=inception_weights, device=device,
                              on_progress=lambda stage, done, total: bars.update(stage, done, total, unit=""))
    console.info(f"FID {report.fid:.2f}, KID {report.kid:.4f} (sd {report.kid_std:.4f}): {report.generated} images "
                 f"of {report.model} against {report.real} of {report.data} ({report.seconds:.0f}s)")
    emit("eval fid", report, json_output)


@app.command("separability")
def separability(
    model: flags.FaceModel = None, classifier: flags.Classifier = None,
    attribute: Annotated[list[str] | None, typer.Option("--attribute", help="Score this attribute (repeatable) "
                                                        "[default: all the classifier reads].", show_default=False,
                                                        callback=flags.celeba_names)] = None,
    samples: Annotated[int, typer.Option("--samples", min=10, help="Faces drawn; the more confidently read half "
                                         "of them is kept for each attribute.")] = SeparabilityOptions.samples,
    device: flags.Device = "auto", seed: flags.Seed = SeparabilityOptions.seed, json_output: flags.Json = False,
) -> None:
    """Linear separability of a face GAN's latent space (StyleGAN's metric; lower is better, 1 at best).

    Per attribute, the conditional entropy in bits of the classifier's reading given the side of a linear
    SVM fitted in the latent space; the score is 2 to the power of their sum. It tells how steerable a
    latent space is: compare generators or training settings with the same classifier and attributes.

    Examples:

        latentctl eval separability --model gan-celeba
        latentctl eval separability --attribute Male --attribute Smiling --samples 20000 --json
    """
    from latentctl.eval.separability import describe, evaluate_separability

    with StageBars() as bars:
        report = evaluate_separability(model, classifier, SeparabilityOptions(
            samples=samples, attributes=tuple(attribute or ()), seed=seed), device=device,
            on_progress=lambda stage, done, total: bars.update(stage, done, total, unit=""))
    console.print_table(*describe(report))
    console.info(f"separability {report.score:.3f} over {len(report.attributes)} attributes"
                 + (f" ({', '.join(report.skipped)}: read one way only, left out)" if report.skipped else ""))
    emit("eval separability", report, json_output)
