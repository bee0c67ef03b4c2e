"""``latentctl steer`` and ``latentctl attributes``: faces that gain or lose attributes, and their names."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from latentctl import console
from latentctl.cli import options as flags
from latentctl.cli.render import emit
from latentctl.latent.session import SteerOptions


def register(app: typer.Typer) -> None:
    app.command("steer")(steer)
    app.command("attributes")(attributes)


def steer(
    out: Annotated[Path, typer.Argument(help="Output .png (one row per face, one column per frame) or .gif.")]
    = Path("steer.png"),
    to: flags.To = None,
    away_from: flags.AwayFrom = None,
    model: flags.FaceModel = None,
    classifier: flags.Classifier = None,
    n: Annotated[int, typer.Option("--n", min=1, max=1024, help="Faces (rows), of seeds S, S+1, ...")] = SteerOptions.n,
    frames: flags.Frames = SteerOptions.frames,
    from_noise: Annotated[Path | None, typer.Option("--from-noise", help="Steer these latents (a file written "
                                                    "by 'latentctl sample --save-latents') instead of seeds.",
                                                    dir_okay=False)] = None,
    method: flags.SteerMethod = flags.Method(SteerOptions.method),
    steps: flags.Steps = SteerOptions.steps,
    strength: flags.Strength = SteerOptions.strength,
    keep_others: flags.KeepOthers = SteerOptions.keep_others,
    until: flags.Until = SteerOptions.until,
    views: flags.Views = SteerOptions.views,
    reach: flags.Reach = SteerOptions.reach,
    samples: flags.Samples = SteerOptions.samples,
    fit: flags.Fit = flags.FitName(SteerOptions.fit),
    direction: Annotated[str | None, typer.Option("--direction", help="Walk a direction of 'latentctl directions "
                                                  "discover' instead: its number (3, sefa:3) or the attribute named "
                                                  "for it (Smiling); digit models too.")] = None,
    frame_ms: flags.FrameMs = SteerOptions.frame_ms,
    scale: flags.Scale = SteerOptions.scale,
    device: flags.Device = "auto",
    seed: flags.Seed = SteerOptions.seed,
    json_output: flags.Json = False,
) -> None:
    """Turn faces towards (or away from) attributes, keeping the others, as a strip of frames per face.

    The generator and the classifier stay frozen; only the latent of each face moves. With the gradient
    method every move follows the classifier's gradient through the generator, with a penalty on any
    other attribute that drifts (--keep-others) and one on leaving the region of latents the generator
    was trained on. Names are CelebA's, matched ignoring case and underscores; 'latentctl attributes'
    lists them. 'latentctl eval steer' measures how well it works.

    A model trained with `train gan --condition attributes` starts each face from a real attribute mix
    without the --to targets (with the --away-from ones) and turns those inputs over the frames:
    alone with --method label, together with the gradient's moves by default.

    Examples:

        latentctl steer --to Male --frames 8 out.png
        latentctl steer --to smiling --away-from eyeglasses --n 8 --until 0.9 smile.gif
        latentctl steer --to Male --keep-others 0 tangled.png
        latentctl steer --to Eyeglasses --method direction --json glasses.png
        latentctl steer --to Smiling --method direction --fit interfacegan smiles.png
        latentctl sample --model gan-celeba --n 4 --save-latents z.safetensors faces.png
        latentctl steer --from-noise z.safetensors --to Smiling smiles.png
        latentctl steer --model gan-attributes --to Eyeglasses --method label glasses.png
        latentctl steer --model gan-attributes --to Smiling --method label --reach 3 --until 0.99 smiles.png
        latentctl steer --model cgan-mnist --direction sefa:0 --strength 4 thicker.png
    """
    from latentctl.latent.session import steer_faces

    options = SteerOptions(method=method.value, n=n, frames=frames, steps=steps, strength=strength,
                           keep_others=keep_others, until=until, views=views, reach=reach, samples=samples,
                           fit=fit.value, frame_ms=frame_ms, scale=scale, seed=seed)
    report = steer_faces(to=to or [], away_from=away_from or [], out=out, options=options, noise=from_noise,
                         model=model, classifier=classifier, device=device, direction=direction)
    report.print_summary(f"wrote {len(report.faces)} x {frames} frames to {out}")
    emit("steer", report, json_output, out)


def attributes(
    classifier: flags.Classifier = None,
    device: flags.Device = "auto",
    json_output: flags.Json = False,
) -> None:
    """List the attribute names steering and classification know, with their base rates.

    With a trained classifier: its attributes, the share of training faces that have each (base rate) and
    how well the classifier reads each on the validation split (balanced accuracy). Without one: CelebA's
    40 names.

    Examples:

        latentctl attributes
        latentctl attributes --classifier classifier-celeba --json
    """
    from latentctl.latent.attributes import list_attributes

    listing = list_attributes(classifier)
    if json_output:
        console.emit_json({"command": "attributes", **listing.to_json()})
        return
    listing.print_table()
    for row in listing.rows:
        console.emit_path(row["name"])
