"""``latentctl sample`` and ``latentctl interpolate``: images from a trained generator."""

from __future__ import annotations

import math
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from latentctl import console, lookup
from latentctl.cli.options import Device, Json, Seed
from latentctl.errors import LatentctlError

Model = Annotated[Path | None, typer.Option("--model", help="Model folder, a name from 'latentctl "
                                            "models list' (gan-celeba), or a Hub repo user/repo[@rev] "
                                            "[default: cgan-mnist].")]
GENERATORS = ("cgan", "gan")
With = Annotated[list[str] | None, typer.Option(
    "--with", show_default=False, help="A face model conditioned on attributes (train gan --condition attributes): "
    "faces with this attribute (repeatable; Male, eyeglasses, 5_o_clock_shadow...). The others come in mixes "
    "real faces have.")]
Without = Annotated[list[str] | None, typer.Option(
    "--without", show_default=False, help="Faces without this attribute (repeatable).")]
Scale = Annotated[int | None, typer.Option("--scale", min=1, max=16, help="Nearest-neighbour upscaling of "
                                           "the output [default: 2 for images under 64 px, else 1].")]


class Walk(str, Enum):
    slerp = "slerp"
    lerp = "lerp"


def register(app: typer.Typer) -> None:
    app.command("sample")(sample)
    app.command("interpolate")(interpolate)


def sample(
    out: Annotated[Path | None, typer.Argument(help="PNG grid to write (a folder with --individual) [default: "
                                               "sample-DIGIT-seedS.png, DIGIT being all without --digit].")] = None,
    model: Model = None,
    n: Annotated[int, typer.Option("--n", min=1, max=10000, help="How many images.")] = 64,
    digit: Annotated[int | None, typer.Option("--digit", min=0, help="Only this digit.")] = None,
    per_digit: Annotated[int | None, typer.Option("--per-digit", min=1, max=1000,
                                                  help="K images of every digit, one row per digit.")] = None,
    truncation: Annotated[float | None, typer.Option("--truncation", min=0.05, help="Redraw noise entries "
                                                     "beyond +-T: cleaner, less varied images.")] = None,
    with_attributes: With = None,
    without_attributes: Without = None,
    individual: Annotated[bool, typer.Option("--individual", help="One PNG per image in the folder OUT.")] = False,
    scale: Scale = None,
    save_latents: Annotated[Path | None, typer.Option("--save-latents", dir_okay=False, help="Also write the "
                                                      "latents (N, D) as safetensors, e.g. for 'latentctl steer "
                                                      "--from-noise'.")] = None,
    device: Device = "auto",
    seed: Seed = 0,
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
    import torch

    from latentctl import images as image_io
    from latentctl.device import resolve_device
    from latentctl.latent.attributes import present_attributes
    from latentctl.latent.sampling import draw_attributes, generate, noise_for_seeds
    from latentctl.latent.sampling import save_latents as write_latents
    from latentctl.store import load_model

    if digit is not None and per_digit is not None:
        raise typer.BadParameter("--digit and --per-digit exclude each other", param_hint="--digit")
    out = out or Path(f"sample-{'all' if digit is None else digit}-seed{seed}" + ("" if individual else ".png"))
    _check_output(out, folder=individual)  # before any work: a bad path fails fast
    if save_latents is not None and not save_latents.parent.is_dir():
        raise LatentctlError(f"the folder {save_latents.parent} does not exist", hint="create it first")
    model = lookup.resolve_model(model, "cgan-mnist")
    generator, config = load_model(model, GENERATORS, resolve_device(device))
    label_count = len(config.labels)
    fixed = _asked_attributes(model, config, with_attributes, without_attributes, digit=digit, per_digit=per_digit)
    attributes = None
    if fixed is not None:
        seeds = list(range(seed, seed + n))
        attributes = draw_attributes(generator.attribute_prior, seeds, fixed)  # (n, A) in {0, 1}
        labels = attributes
        columns = min(n, math.ceil(math.sqrt(n)))
    elif not label_count:
        _refuse_digits(model, digit=digit, per_digit=per_digit)
        labels = None
        columns = min(n, math.ceil(math.sqrt(n)))
    elif digit is not None:
        label_index = _label_index(config.labels, digit)
        labels = torch.full((n,), label_index)
        columns = min(n, 8)
    elif per_digit is not None:
        labels = torch.arange(label_count).repeat_interleave(per_digit)
        columns = per_digit
    else:
        labels = torch.arange(n) % label_count
        columns = label_count
    seeds = list(range(seed, seed + (n if labels is None else labels.shape[0])))
    noise = noise_for_seeds(seeds, config.latent_dim, truncation)
    pictures = generate(generator, noise, labels)
    if save_latents is not None:
        write_latents(save_latents, noise, seeds)
    if attributes is not None:  # what each image was asked to show
        described: list[dict[str, Any]] = [{"attributes": present_attributes(config.labels, row)}
                                           for row in attributes]
    elif labels is None:
        described = [{} for _ in seeds]
    else:
        described = [{"label": config.labels[label]} for label in labels.tolist()]

    written: list[dict[str, Any]] = []
    if individual:
        out.mkdir(exist_ok=True)
        for index, (picture, about, image_seed) in enumerate(zip(pictures, described, seeds, strict=True)):
            path = out / (f"{index:04d}-digit{about['label']}-seed{image_seed}.png" if "label" in about else
                          f"{index:04d}-seed{image_seed}.png")
            image_io.save_image(image_io.to_pil(picture[None], nrow=1, padding=0, scale=scale or 1), path)
            written.append({"path": str(path), "seed": image_seed, **about})
    else:
        image_io.save_image(image_io.to_pil(pictures, nrow=columns, scale=_scale(scale, config)), out)
        written = [{"path": str(out), "index": i, "row": i // columns, "column": i % columns, "seed": s, **about}
                   for i, (about, s) in enumerate(zip(described, seeds, strict=True))]
    console.info(f"wrote {len(pictures)} images to {out}")
    if json_output:
        console.emit_json({"command": "sample", "model": str(model), "output": str(out),
                           "individual": individual, "truncation": truncation,
                           "latents": None if save_latents is None else str(save_latents), "images": written})
    else:
        console.emit_path(out)


def interpolate(
    out: Annotated[Path | None, typer.Argument(help="Output .png (a strip per row) or .gif (animated) "
                                               "[default: interpolate-D.png or interpolate-D-to-E.png].")] = None,
    model: Model = None,
    digit: Annotated[int | None, typer.Option("--digit", min=0, help="Digit to walk through "
                                              "[default: row r shows digit r].")] = None,
    to_digit: Annotated[int | None, typer.Option("--to-digit", min=0, help="Morph into this digit, "
                                                 "blending the label embedding too.")] = None,
    frames: Annotated[int, typer.Option("--frames", min=2, max=256, help="Images per walk.")] = 8,
    rows: Annotated[int, typer.Option("--rows", min=1, max=64, help="Independent walks.")] = 4,
    mode: Annotated[Walk, typer.Option("--mode", help="slerp (stays on the Gaussian shell) or lerp.")] = Walk.slerp,
    with_attributes: With = None,
    without_attributes: Without = None,
    frame_ms: Annotated[int, typer.Option("--frame-ms", min=10, max=5000, help="GIF frame time.")] = 120,
    scale: Scale = None,
    device: Device = "auto",
    seed: Seed = 0,
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
    from latentctl import images as image_io
    from latentctl.device import resolve_device
    from latentctl.latent.attributes import present_attributes
    from latentctl.latent.sampling import draw_attributes, interpolation_walks
    from latentctl.store import load_model

    if to_digit is not None and digit is None:
        raise typer.BadParameter("--to-digit needs --digit (the digit to start from)", param_hint="--to-digit")
    if out is None:
        out = Path(f"interpolate-{'all' if digit is None else digit}"
                   + (f"-to-{to_digit}" if to_digit is not None else "") + ".png")
    _check_output(out, folder=False)
    model = lookup.resolve_model(model, "cgan-mnist")
    generator, config = load_model(model, GENERATORS, resolve_device(device))
    start_labels: list[int] | None = None
    end_labels: list[int] | None = None
    attributes = None
    fixed = _asked_attributes(model, config, with_attributes, without_attributes, digit=digit, to_digit=to_digit)
    if fixed is not None:
        attributes = draw_attributes(generator.attribute_prior, [seed + 2 * r for r in range(rows)], fixed)
    elif not config.labels:
        _refuse_digits(model, digit=digit, to_digit=to_digit)
    else:
        start_labels = [(_label_index(config.labels, digit) if digit is not None else r % len(config.labels))
                        for r in range(rows)]
        end_labels = [_label_index(config.labels, to_digit)] * rows if to_digit is not None else start_labels
    walks = interpolation_walks(generator, config.latent_dim, seed, rows, frames, mode.value,
                                start_labels, end_labels, attributes=attributes)
    image_io.save_walks(walks, out, scale=_scale(scale, config), frame_ms=frame_ms)
    console.info(f"wrote {rows} walk(s) of {frames} frames to {out}")
    if json_output:
        console.emit_json({"command": "interpolate", "model": str(model), "output": str(out), "mode": mode.value,
                           "frames": frames, "rows": [
                               {"from_seed": seed + 2 * r, "to_seed": seed + 2 * r + 1,
                                **({} if start_labels is None or end_labels is None else
                                   {"from_label": config.labels[start_labels[r]],
                                    "to_label": config.labels[end_labels[r]]}),
                                **({} if attributes is None else
                                   {"attributes": present_attributes(config.labels, attributes[r])})}
                               for r in range(rows)]})
    else:
        console.emit_path(out)


def _asked_attributes(model: Path, config: Any, with_attributes: list[str] | None,
                      without_attributes: list[str] | None, **digit_options: int | None) -> dict[int, int] | None:
    """For a model conditioned on attributes: the columns asked for, 1 with and 0 without (None otherwise).

    --with / --without on another model, digit options on this one, or one attribute both with and
    without, are usage errors (exit 2); an unknown attribute is an error with the closest names."""
    from latentctl.latent.attributes import match_attribute

    if not config.conditioned_on_attributes:
        for flag, given in (("--with", with_attributes), ("--without", without_attributes)):
            if given:
                raise typer.BadParameter(f"{model} is not conditioned on attributes: {flag} needs a model made by "
                                         "'latentctl train gan --condition attributes'", param_hint=flag)
        return None
    for name, value in digit_options.items():
        if value is not None:
            raise typer.BadParameter(f"{model} draws faces conditioned on attributes: it has no digits (choose "
                                     "attributes with --with / --without)", param_hint="--" + name.replace("_", "-"))
    fixed: dict[int, int] = {}
    for value, names in ((1, with_attributes or []), (0, without_attributes or [])):
        for name in names:
            column = config.labels.index(match_attribute(name, config.labels, listing="the model is conditioned on"))
            if fixed.get(column, value) != value:
                raise typer.BadParameter(f"{config.labels[column]} is asked for both with and without",
                                         param_hint="--with")
            fixed[column] = value
    return fixed


def _refuse_digits(model: Path, **given: int | None) -> None:
    """Digit options on a model without labels are a usage error (exit 2)."""
    for name, value in given.items():
        if value is not None:
            flag = "--" + name.replace("_", "-")
            raise typer.BadParameter(f"{model} is an unconditional model (faces): it has no digits to choose",
                                     param_hint=flag)


def _label_index(labels: list[str], digit: int) -> int:
    """Map a ``--digit`` value to the model's label index; an unknown digit is a usage error (exit 2)."""
    if str(digit) not in labels:
        raise typer.BadParameter(f"{digit} is not a label of this model (labels: {', '.join(labels)})",
                                 param_hint="--digit")
    return labels.index(str(digit))


def _scale(scale: int | None, config: Any) -> int:
    return scale if scale is not None else (2 if config.image_size < 64 else 1)


def _check_output(out: Path, folder: bool) -> None:
    """Fail before loading anything when ``out`` cannot be written."""
    from latentctl import images as image_io

    if not folder:
        image_io.check_writable(out)
        return
    if out.exists() and not out.is_dir():
        raise LatentctlError(f"{out} is a file", hint="--individual writes into a folder: give a folder path")
    if not out.parent.exists():
        raise LatentctlError(f"the folder {out.parent} does not exist", hint="create it first")

