"""What a trained generator draws, as the ``sample`` and ``interpolate`` commands do: a grid with the label or
attributes of each image, or walks between latents, written as PNG or GIF when given a path.

The math is in ``latent.sampling``; this module adds the model lookup, the checks of the flags against the
model (UsageError, as for a bad flag) and the files. Kept free of torch at import: the CLI reads the options'
defaults while building ``--help``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latentctl import console
from latentctl.errors import LatentctlError, UsageError

if TYPE_CHECKING:
    import torch

DEFAULT_MODEL = "cgan-mnist"  # what --model names when it is not given
GENERATORS = ("cgan", "gan")  # the kinds of model that draw images
WALKS = ("slerp", "lerp")  # how a walk goes from one latent to the next: the keys of sampling.INTERPOLATIONS


@dataclass
class SampleOptions:
    """What :func:`sample` draws, with ``latentctl sample``'s defaults. Image i uses seed ``seed + i``."""

    n: int = 64
    digit: int | None = None  # only this digit
    per_digit: int | None = None  # K images of every digit, one row per digit, in place of n
    truncation: float | None = None  # redraw noise entries beyond +-T
    with_attributes: Sequence[str] | None = None  # a model conditioned on attributes: faces with these...
    without_attributes: Sequence[str] | None = None  # ...and without these
    scale: int | None = None  # nearest-neighbour upscaling of the grid [default: 2 under 64 px, else 1]
    seed: int = 0


@dataclass
class Samples:
    """What :func:`sample` drew: the images, the noise and seeds behind them, and a record of each image."""

    model: Path
    images: torch.Tensor  # (N, C, H, W) in [-1, 1]
    noise: torch.Tensor  # (N, D)
    seeds: list[int]
    labels: torch.Tensor | None  # the generator's condition: label indices (N,), or attributes (N, A) in {0, 1}
    columns: int  # of the grid
    records: list[dict[str, Any]]  # per image: where it was written, its seed, and its label or attributes
    out: Path | None = None
    individual: bool = False
    truncation: float | None = None
    latents: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {"model": str(self.model), "output": _text(self.out), "individual": self.individual,
                "truncation": self.truncation, "latents": _text(self.latents), "images": self.records}


def sample(model: str | Path | None = None, options: SampleOptions | None = None, *, out: str | Path | None = None,
           individual: bool = False, latents: str | Path | None = None, device: str = "auto") -> Samples:
    """Draw images from ``model`` (a folder, a registered name or a Hub repo; default ``cgan-mnist``).

    A digit model without ``digit`` or ``per_digit`` draws digit i mod 10 as image i. With ``out``, writes a
    grid PNG there, or with ``individual`` one PNG per image into the folder ``out``; ``latents`` is a file to
    write the noise to (``--save-latents``, for ``steer --from-noise``). Flags that do not fit the model are
    UsageErrors.
    """
    import torch

    from latentctl import images as image_io
    from latentctl.latent.attributes import present_attributes
    from latentctl.latent.sampling import draw_attributes, generate, noise_for_seeds, save_latents

    options = options or SampleOptions()
    if options.digit is not None and options.per_digit is not None:
        raise UsageError("--digit and --per-digit exclude each other", option="--digit")
    out, latents = _path(out), _path(latents)
    if individual and out is None:
        raise ValueError("individual images go into a folder: pass out")
    if out is not None:
        _check_output(out, folder=individual)  # before any work: a bad path fails fast
    if latents is not None and not latents.parent.is_dir():
        raise LatentctlError(f"the folder {latents.parent} does not exist", hint="create it first")
    model, generator, config = _load(model, device)
    n, seed = options.n, options.seed
    fixed = _asked_attributes(model, config, options.with_attributes, options.without_attributes,
                              digit=options.digit, per_digit=options.per_digit)
    attributes = None
    if fixed is not None:
        attributes = draw_attributes(generator.attribute_prior, list(range(seed, seed + n)), fixed)  # (n, A)
        labels, columns = attributes, min(n, math.ceil(math.sqrt(n)))
    elif not config.labels:
        _refuse_digits(model, digit=options.digit, per_digit=options.per_digit)
        labels, columns = None, min(n, math.ceil(math.sqrt(n)))
    elif options.digit is not None:
        labels, columns = torch.full((n,), _label_index(config.labels, options.digit)), min(n, 8)
    elif options.per_digit is not None:
        labels = torch.arange(len(config.labels)).repeat_interleave(options.per_digit)
        columns = options.per_digit
    else:
        labels, columns = torch.arange(n) % len(config.labels), len(config.labels)
    seeds = list(range(seed, seed + (n if labels is None else labels.shape[0])))
    noise = noise_for_seeds(seeds, config.latent_dim, options.truncation)
    pictures = generate(generator, noise, labels)
    if latents is not None:
        save_latents(latents, noise, seeds)
    if attributes is not None:  # what each image was asked to show
        described: list[dict[str, Any]] = [{"attributes": present_attributes(config.labels, row)}
                                           for row in attributes]
    elif labels is None:
        described = [{} for _ in seeds]
    else:
        described = [{"label": config.labels[label]} for label in labels.tolist()]

    if individual:
        out.mkdir(exist_ok=True)
        records = []
        for index, (picture, about, image_seed) in enumerate(zip(pictures, described, seeds, strict=True)):
            path = out / (f"{index:04d}-digit{about['label']}-seed{image_seed}.png" if "label" in about else
                          f"{index:04d}-seed{image_seed}.png")
            image_io.save_image(image_io.to_pil(picture[None], nrow=1, padding=0, scale=options.scale or 1), path)
            records.append({"path": str(path), "seed": image_seed, **about})
    else:
        if out is not None:
            image_io.save_image(image_io.to_pil(pictures, nrow=columns, scale=_scale(options.scale, config)), out)
        records = [{"path": _text(out), "index": i, "row": i // columns, "column": i % columns, "seed": s, **about}
                   for i, (about, s) in enumerate(zip(described, seeds, strict=True))]
    if out is not None:
        console.info(f"wrote {len(pictures)} images to {out}")
    return Samples(model, pictures, noise, seeds, labels, columns, records, out, individual, options.truncation,
                   latents)


@dataclass
class InterpolateOptions:
    """What :func:`interpolate` walks through, with ``latentctl interpolate``'s defaults.

    Row r walks from the noise of seed ``seed + 2r`` to that of ``seed + 2r + 1``."""

    digit: int | None = None  # the digit to walk through [default: row r shows digit r]
    to_digit: int | None = None  # morph into this digit, blending the label embedding too
    frames: int = 8  # images per walk
    rows: int = 4  # independent walks
    mode: str = "slerp"  # one of WALKS
    with_attributes: Sequence[str] | None = None  # a model conditioned on attributes: each row's faces with these...
    without_attributes: Sequence[str] | None = None  # ...and without these
    frame_ms: int = 120  # GIF frame time
    scale: int | None = None  # nearest-neighbour upscaling [default: 2 under 64 px, else 1]
    seed: int = 0


@dataclass
class Walks:
    """What :func:`interpolate` drew: the walks' images and what each walk goes between."""

    model: Path
    images: torch.Tensor  # (rows, frames, C, H, W) in [-1, 1]
    mode: str
    rows: list[dict[str, Any]]  # per walk: its two seeds, and its labels or attributes
    out: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {"model": str(self.model), "output": _text(self.out), "mode": self.mode,
                "frames": self.images.shape[1], "rows": self.rows}


def interpolate(model: str | Path | None = None, options: InterpolateOptions | None = None, *,
                out: str | Path | None = None, device: str = "auto") -> Walks:
    """Walk between latent points of ``model`` (default ``cgan-mnist``); with ``out``, write a PNG (a row per
    walk) or an animated GIF. A model conditioned on attributes keeps row r's attributes (drawn with seed
    ``seed + 2r``) along the walk. Flags that do not fit the model are UsageErrors.
    """
    from latentctl import images as image_io
    from latentctl.latent.attributes import present_attributes
    from latentctl.latent.sampling import draw_attributes, interpolation_walks

    options = options or InterpolateOptions()
    if options.to_digit is not None and options.digit is None:
        raise UsageError("--to-digit needs --digit (the digit to start from)", option="--to-digit")
    if options.mode not in WALKS:
        raise ValueError(f"mode must be one of {', '.join(WALKS)}, not {options.mode!r}")
    out = _path(out)
    if out is not None:
        image_io.check_writable(out)
    model, generator, config = _load(model, device)
    rows, seed = options.rows, options.seed
    start_labels: list[int] | None = None
    end_labels: list[int] | None = None
    attributes = None
    fixed = _asked_attributes(model, config, options.with_attributes, options.without_attributes,
                              digit=options.digit, to_digit=options.to_digit)
    if fixed is not None:
        attributes = draw_attributes(generator.attribute_prior, [seed + 2 * r for r in range(rows)], fixed)
    elif not config.labels:
        _refuse_digits(model, digit=options.digit, to_digit=options.to_digit)
    else:
        start_labels = [(_label_index(config.labels, options.digit) if options.digit is not None
                         else r % len(config.labels)) for r in range(rows)]
        end_labels = ([_label_index(config.labels, options.to_digit)] * rows if options.to_digit is not None
                      else start_labels)
    walks = interpolation_walks(generator, config.latent_dim, seed, rows, options.frames, options.mode,
                                start_labels, end_labels, attributes=attributes)
    if out is not None:
        image_io.save_walks(walks, out, scale=_scale(options.scale, config), frame_ms=options.frame_ms)
        console.info(f"wrote {rows} walk(s) of {options.frames} frames to {out}")
    described = [{"from_seed": seed + 2 * r, "to_seed": seed + 2 * r + 1,
                  **({} if start_labels is None or end_labels is None else
                     {"from_label": config.labels[start_labels[r]], "to_label": config.labels[end_labels[r]]}),
                  **({} if attributes is None else {"attributes": present_attributes(config.labels, attributes[r])})}
                 for r in range(rows)]
    return Walks(model, walks, options.mode, described, out)


def _load(model: str | Path | None, device: str) -> tuple[Path, Any, Any]:
    """The model folder ``model`` names, and its generator (on ``device``) and config."""
    from latentctl import lookup
    from latentctl.device import resolve_device
    from latentctl.store import load_model

    folder = lookup.resolve_model(model, DEFAULT_MODEL)
    return (folder, *load_model(folder, GENERATORS, resolve_device(device)))


def _asked_attributes(model: Path, config: Any, with_attributes: Sequence[str] | None,
                      without_attributes: Sequence[str] | None, **digit_options: int | None) -> dict[int, int] | None:
    """For a model conditioned on attributes: the columns asked for, 1 with and 0 without (None otherwise).

    --with / --without on another model, digit options on this one, or one attribute both with and
    without, are UsageErrors; an unknown attribute is a LatentctlError naming the closest ones."""
    from latentctl.latent.attributes import match_attribute

    if not config.conditioned_on_attributes:
        for flag, given in (("--with", with_attributes), ("--without", without_attributes)):
            if given:
                raise UsageError(f"{model} is not conditioned on attributes: {flag} needs a model made by "
                                 "'latentctl train gan --condition attributes'", option=flag)
        return None
    for name, value in digit_options.items():
        if value is not None:
            raise UsageError(f"{model} draws faces conditioned on attributes: it has no digits (choose "
                             "attributes with --with / --without)", option="--" + name.replace("_", "-"))
    fixed: dict[int, int] = {}
    for value, names in ((1, with_attributes or []), (0, without_attributes or [])):
        for name in names:
            column = config.labels.index(match_attribute(name, config.labels, listing="the model is conditioned on"))
            if fixed.get(column, value) != value:
                raise UsageError(f"{config.labels[column]} is asked for both with and without", option="--with")
            fixed[column] = value
    return fixed


def _refuse_digits(model: Path, **given: int | None) -> None:
    """Digit options on a model without labels are a UsageError."""
    for name, value in given.items():
        if value is not None:
            raise UsageError(f"{model} is an unconditional model (faces): it has no digits to choose",
                             option="--" + name.replace("_", "-"))


def _label_index(labels: list[str], digit: int) -> int:
    """Map a ``--digit`` value to the model's label index; a digit the model lacks is a UsageError."""
    if str(digit) not in labels:
        raise UsageError(f"{digit} is not a label of this model (labels: {', '.join(labels)})", option="--digit")
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


def _path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)
