"""``latentctl invert`` and ``latentctl edit``: real photos into a face GAN's latent space, and edited there."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from latentctl import console
from latentctl.cli import options as flags
from latentctl.cli.render import emit
from latentctl.latent.inversion import InvertOptions
from latentctl.latent.session import SteerOptions

Photos = Annotated[list[Path], typer.Argument(help="Face photos (JPEG, PNG, ...; any size), prepared as the "
                                              "model's training images were.", show_default=False, dir_okay=False)]
InvertSteps = Annotated[int, typer.Option("--invert-steps", min=0, max=10_000, rich_help_panel="Inversion",
                                          help="Adam steps refining the best random start.")]
Starts = Annotated[int, typer.Option("--starts", min=1, max=65_536, rich_help_panel="Inversion",
                                     help="Random latents tried first (seeds S, S+1, ...); the closest is the start.")]
Encoder = Annotated[Path | None, typer.Option("--encoder", rich_help_panel="Inversion", show_default=False, help=(
    "Start from this encoder's guess ('latentctl train encoder'; trained on this model) instead of random latents "
    "[default: the model's folder + -encoder, when there]."))]
NoEncoder = Annotated[bool, typer.Option("--no-encoder", rich_help_panel="Inversion", help=(
    "Start from random latents even where an encoder is found."))]


def register(app: typer.Typer) -> None:
    app.command("invert")(invert)
    app.command("edit")(edit)


def invert(
    photos: Photos,
    model: flags.FaceModel = None,
    classifier: flags.Classifier = None,
    out: Annotated[Path, typer.Option("--out", help="Latents file to write (as 'sample --save-latents' does); "
                                      "each reconstruction goes beside it, PHOTO-reconstruction.png.",
                                      dir_okay=False)] = Path("latents.safetensors"),
    steps: Annotated[int, typer.Option("--steps", min=0, max=10_000, rich_help_panel="Inversion",
                                       help="Adam steps refining the best random start.")] = InvertOptions.steps,
    starts: Starts = InvertOptions.starts,
    encoder: Encoder = None, no_encoder: NoEncoder = False,
    device: flags.Device = "auto",
    seed: flags.Seed = InvertOptions.seed,
    json_output: flags.Json = False,
) -> None:
    """Find the latent of each photo in a face GAN: the face it draws closest to the photo.

    The best of many random latents (or an encoder's guess), refined with Adam on the pixels, the attribute
    classifier's features (when there is one) and a prior that keeps the latent where the generator was
    trained. Prints each photo's PSNR; --json adds the classifier's readings of photo and reconstruction.

    Examples:

        latentctl invert me.jpg
        latentctl invert me.jpg --model models/gan --encoder models/gan-encoder
        latentctl invert photos/*.jpg --out photos.safetensors --json
        latentctl invert me.jpg --out me.safetensors && latentctl steer --from-noise me.safetensors --to Smiling me.png
    """
    from latentctl.latent.inversion import invert as invert_photos

    report = invert_photos(photos, model=model, classifier=classifier, out=out, device=device, encoder=encoder,
                           use_encoder=not no_encoder, options=InvertOptions(steps=steps, starts=starts, seed=seed))
    for line in report.photo_lines():
        console.info(line)
    console.info(f"wrote {out} and {len(photos)} reconstruction(s) in {report.seconds:.1f}s")
    emit("invert", report, json_output, out)


def edit(
    photo: Annotated[Path, typer.Argument(help="A face photo (JPEG, PNG, ...; any size).", show_default=False,
                                          dir_okay=False)],
    out: Annotated[Path, typer.Argument(help="Output .png (the photo, its reconstruction, then the frames) or .gif.")]
    = Path("edit.png"),
    to: flags.To = None, away_from: flags.AwayFrom = None,
    model: flags.FaceModel = None, classifier: flags.Classifier = None,
    frames: flags.Frames = SteerOptions.frames,
    method: flags.SteerMethod = flags.Method(SteerOptions.method),
    steps: flags.Steps = SteerOptions.steps, strength: flags.Strength = SteerOptions.strength,
    keep_others: flags.KeepOthers = SteerOptions.keep_others, until: flags.Until = SteerOptions.until,
    views: flags.Views = SteerOptions.views, reach: flags.Reach = SteerOptions.reach,
    samples: flags.Samples = SteerOptions.samples,
    invert_steps: InvertSteps = InvertOptions.steps, starts: Starts = InvertOptions.starts,
    encoder: Encoder = None, no_encoder: NoEncoder = False,
    frame_ms: flags.FrameMs = SteerOptions.frame_ms, scale: flags.Scale = SteerOptions.scale,
    device: flags.Device = "auto", seed: flags.Seed = SteerOptions.seed, json_output: flags.Json = False,
) -> None:
    """Edit a photo: find its latent (as 'latentctl invert'), then steer it (as 'latentctl steer').

    Takes every steering option of 'steer'. The strip shows the photo, its reconstruction (the first frame),
    then the face turning; how close the reconstruction is bounds how much the edit looks like the photo.

    Examples:

        latentctl edit me.jpg --to Smiling smile.png
        latentctl edit me.jpg --to Eyeglasses --away-from Smiling --frames 12 --until 0.9 me.gif
        latentctl edit me.jpg --to Male --method direction --json male.png
    """
    from latentctl.latent.editing import edit_photo

    report = edit_photo(photo, to=to or [], away_from=away_from or [], out=out, model=model, classifier=classifier,
                        device=device, encoder=encoder, use_encoder=not no_encoder,
                        invert_options=InvertOptions(steps=invert_steps, starts=starts, seed=seed),
                        options=SteerOptions(method=method.value, frames=frames, steps=steps, strength=strength,
                                             keep_others=keep_others, until=until, views=views, reach=reach,
                                             samples=samples, frame_ms=frame_ms, scale=scale, seed=seed))
    for line in report.inversion.photo_lines():
        console.info(line)
    report.steering.print_summary(f"wrote the photo, its reconstruction and {frames - 1} more frames to {out}")
    emit("edit", report, json_output, out)
