"""``latentctl sample`` and ``latentctl interpolate``: flags into one call of latentctl.latent.generation each."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from latentctl.cli.options import Device, Json, Seed
from latentctl.cli.render import emit
from latentctl.latent.generation import DEFAULT_MODEL, WALKS, InterpolateOptions, SampleOptions, interpolate, sample

Model = Annotated[Path | None, typer.Option("--model", help="Model folder, a name from 'latentctl models list' "
                                            f"(gan-celeba), or a Hub repo user/repo[@rev] [default: {DEFAULT_MODEL}].")]
With = Annotated[list[str] | None, typer.Option(
    "--with", show_default=False, help="A face model conditioned on attributes (train gan --condition attributes): "
    "faces with this attribute (repeatable; Male, eyeglasses, 5_o_clock_shadow...). The others come in mixes "
    "real faces have.")]
Without = Annotated[list[str] | None, typer.Option(
    "--without", show_default=False, help="Faces without this attribute (repeatable).")]
Scale = Annotated[int | None, typer.Option("--scale", min=1, max=16, help="Nearest-neighbour upscaling of "
                                           "the output [default: 2 for images under 64 px, else 1].")]
Walk = Annotated[Literal[WALKS], typer.Option("--mode", help="slerp (stays on the Gaussian shell) or lerp.")]


def register(app: typer.Typer) -> None:
    app.command("sample")(sample_command)
    app.command("interpolate")(interpolate_command)


def sample_command(
    out: Annotated[Path | None, typer.Argument(help="PNG grid to write (a folder with --individual) [default: "
                                               "sample-DIGIT-seedS.png, DIGIT being all without --digit].")] = None,
    model: Model = None,
    n: Annotated[int, typer.Option("--n", min=1, max=10000, help="How many images.")] = SampleOptions.n,
    digit: Annotated[int | None, typer.Option("--digit", min=0, help="Only this digit.")] = None,
    per_digit: Annotated[int | None, typer.Option("--per-digit", min=1, max=1000,
                                                  help="K images of every digit, one row per digit.")] = None,
    truncation: Annotated[float | None, typer.Option("--truncation", min=0.05, help="Redraw noise entries "
                                                     "beyond +-T: cleaner, less varied images.")] = None,
    with_attributes: With = None,
    without_attributes: Without = None,
    individual: Annotated[bool, typer.Option("--individual", help="One PNG per image in the folder OUT.")] = False,
    scale: Scale = None,
    save_latents: Annotated[Path | None, typer.Option("--save-latents", dir_okay=False, help="Also write the latents "
                                                      "(N, D) as safetensors, e.g. for 'latentctl steer "
                                                      "--from-noise'.")] = None,
    device: Device = "auto",
    seed: Seed = SampleOptions.seed,
    json_output: Json = False,
) -> None:
    """Generate images from a trained GAN (digits or faces) as a grid PNG or as individual files.

    Image i uses seed S+i, so any image can be regenerated alone: `--digit 7 --seed 17 --n 1` repeats
    the 18th image of `--digit 7 --seed 0`. For a digit model without --digit or --per-digit, image i
    shows digit i mod 10 (column j of the grid shows digit j); --per-digit takes the place of --n.
    A face model conditioned on attributes draws each image's attributes from real faces' (seeded by
    S+i too), among those that agree with --with and --without.

    Examples:

        latentctl sample grid.png
        latentctl sample --digit 7 --n 16 sevens.png
        latentctl sample --per-digit 8 --truncation 1.5 --json table.png
        latentctl sample --individual --n 100 digits/
        latentctl sample --model gan-celeba --n 64 faces.png
        latentctl sample --model gan-celeba --n 4 --save-latents z.safetensors faces.png
        latentctl sample --model gan-attributes --with Eyeglasses --without Male glasses.png
    """
    out = out or Path(f"sample-{'all' if digit is None else digit}-seed{seed}" + ("" if individual else ".png"))
    options = SampleOptions(n=n, digit=digit, per_digit=per_digit, truncation=truncation, scale=scale, seed=seed,
                            with_attributes=with_attributes, without_attributes=without_attributes)
    emit("sample", sample(model, options, out=out, individual=individual, latents=save_latents, device=device),
         json_output, out)


def interpolate_command(
    out: Annotated[Path | None, typer.Argument(help="Output .png (a strip per row) or .gif (animated) "
                                               "[default: interpolate-D.png or interpolate-D-to-E.png].")] = None,
    model: Model = None,
    digit: Annotated[int | None, typer.Option("--digit", min=0, max=9, help="Digit to walk through "
                                              "[default: row r shows digit r].")] = None,
    to_digit: Annotated[int | None, typer.Option("--to-digit", min=0, max=9, help="Morph into this digit, "
                                                 "blending the label embedding too.")] = None,
    frames: Annotated[int, typer.Option("--frames", min=2, max=256,
                                        help="Images per walk.")] = InterpolateOptions.frames,
    rows: Annotated[int, typer.Option("--rows", min=1, max=64, help="Independent walks.")] = InterpolateOptions.rows,
    mode: Walk = InterpolateOptions.mode,
    with_attributes: With = None,
    without_attributes: Without = None,
    frame_ms: Annotated[int, typer.Option("--frame-ms", min=10, max=5000,
                                          help="GIF frame time.")] = InterpolateOptions.frame_ms,
    scale: Scale = None,
    device: Device = "auto",
    seed: Seed = InterpolateOptions.seed,
    json_output: Json = False,
) -> None:
    """Walk between latent points: a PNG with one row per walk, or an animated GIF.

    Row r walks from the noise of seed S+2r to that of seed S+2r+1. With --to-digit the label
    embedding is blended as well, so the digit morphs from one class into the other. Face models
    walk between faces; one conditioned on attributes keeps row r's attributes along the walk (drawn
    from real faces' with seed S+2r, among those that agree with --with and --without).

    Examples:

        latentctl interpolate --digit 7
        latentctl interpolate --digit 1 --to-digit 7 --frames 12 morph.gif
        latentctl interpolate --mode lerp --rows 8 --json walks.png
        latentctl interpolate --model gan-celeba --frames 10 faces.gif
        latentctl interpolate --model gan-attributes --with Smiling --without Eyeglasses smiles.gif
    """
    out = out or Path(f"interpolate-{'all' if digit is None else digit}"
                      + ("" if to_digit is None else f"-to-{to_digit}") + ".png")
    options = InterpolateOptions(digit=digit, to_digit=to_digit, frames=frames, rows=rows, mode=mode, seed=seed,
                                 with_attributes=with_attributes, without_attributes=without_attributes,
                                 frame_ms=frame_ms, scale=scale)
    emit("interpolate", interpolate(model, options, out=out, device=device), json_output, out)
