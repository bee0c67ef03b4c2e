"""Directions without labels as commands: ``directions discover`` finds a set (SeFa or GANSpace, see
``latent.components``), names it by a classifier's readings when given one, caches it and draws it; ``steer
--direction`` walks one of it. docs/steering.md ("Directions without labels") shows what they find.

Importing this module loads no torch: the CLI reads ``DiscoverOptions``' defaults while building ``--help``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latentctl import console, lookup, store
from latentctl.errors import UsageError
from latentctl.latent import DISCOVERY_METHODS

if TYPE_CHECKING:
    import torch

    from latentctl.latent.components import DiscoveredDirections

DEFAULT_MODEL = "gan-celeba"
SPAN = 3.0  # the grid and the naming run from -SPAN to +SPAN standard deviations along each direction
COLUMNS = 7  # faces per row of the grid: -3, -2, ..., +3 sd
NAMING_FACES = 32  # faces whose readings name a direction (their mean change)


@dataclass(frozen=True)
class DiscoverOptions:
    """Every setting of ``directions discover``, with its defaults (the CLI's flags read them)."""

    method: str = "sefa"  # one of DISCOVERY_METHODS
    k: int = 20  # directions to find
    samples: int = 10_000  # noise vectors whose first-layer activations GANSpace decomposes
    scale: int | None = None  # nearest-neighbour upscaling of the grid; None: 2 under 64 px, else 1
    seed: int = 0  # of the grid's base face, the naming faces and GANSpace's samples


# --------------------------------------------------------------------------------------------- the commands

@dataclass
class Discovery:
    """What ``discover_directions`` found and drew: the set, where it is cached, and the grid."""

    model_dir: Path
    classifier_dir: Path | None
    found: DiscoveredDirections
    options: DiscoverOptions
    images: torch.Tensor  # (k, COLUMNS, C, H, W) in [-1, 1]: row i walks component i from -SPAN to +SPAN sd
    saved: Path | None = None
    out: Path | None = None

    @property
    def offsets(self) -> list[float]:
        """The grid's columns, in standard deviations."""
        return [-SPAN + 2 * SPAN * column / (COLUMNS - 1) for column in range(COLUMNS)]

    def components(self) -> list[dict[str, Any]]:
        """Per component: its index, name, standard deviation and the attributes it changes most."""
        return [{"index": i, "name": self.found.name(i), "sd": round(float(self.found.sd[i]), 4),
                 "attributes": [{"attribute": name, "change": round(change, 4) + 0.0}
                                for name, change in self.found.top(i)]} for i in range(self.found.k)]

    def lines(self) -> list[str]:
        """One line per component, for a person."""
        return [f"{c['index']:>3} sd {c['sd']:.2f}" + "".join(f"  {a['attribute']} {a['change']:+.2f}"
                                                              for a in c["attributes"]) for c in self.components()]

    def to_json(self) -> dict[str, Any]:
        options = self.options
        return {"model": str(self.model_dir), "classifier": _text(self.classifier_dir), "output": _text(self.out),
                "method": options.method, "k": self.found.k, "seed": options.seed,
                **({"samples": options.samples} if options.method == "ganspace" else {}),
                "saved": _text(self.saved), "offsets_sd": [round(o, 4) for o in self.offsets],
                "components": self.components()}


def discover_directions(model: str | Path | None = None, options: DiscoverOptions | None = None, *,
                        classifier: str | Path | None = None, out: str | Path | None = None,
                        device: str = "auto") -> Discovery:
    """Find ``options.k`` directions in the latent space of ``model`` (default ``gan-celeba``; digit models
    too) without labels, cache them for ``steer --direction``, and with ``out`` write a grid PNG: one row per
    direction, the same base face from -3 to +3 standard deviations along it. With ``classifier``, each
    direction is named by the attributes whose probability changes most along it (face models)."""
    import torch

    from latentctl import images as image_io
    from latentctl.device import resolve_device
    from latentctl.latent import components
    from latentctl.latent.sampling import generate, noise_for_seeds

    options = options or DiscoverOptions()
    if options.method not in DISCOVERY_METHODS:
        raise UsageError(f"unknown method {options.method!r}: use {' or '.join(DISCOVERY_METHODS)}", "--method")
    if options.k < 1:
        raise UsageError("find at least one direction", "--k")
    out = None if out is None else Path(out)
    if out is not None:
        image_io.check_writable(out)
    torch_device = resolve_device(device)
    model_dir = lookup.resolve_model(model, DEFAULT_MODEL)
    generator, config = store.load_model(model_dir, ("gan", "cgan"), torch_device)
    if options.k > config.latent_dim:
        raise UsageError(f"the model's latent has {config.latent_dim} dimensions: at most {config.latent_dim} "
                         "directions", "--k")
    reader = None
    classifier_dir = None if classifier is None else lookup.resolve_model(classifier, "classifier-celeba")
    if classifier_dir is not None:
        from latentctl.latent.attributes import check_pair

        reader, reader_config = store.load_model(classifier_dir, "classifier", torch_device, option="--classifier")
        check_pair(config, reader_config, model_dir, classifier_dir)
    console.info(f"discovering {options.k} directions of {model_dir} ({options.method}"
                 + (f", {options.samples:,} samples)" if options.method == "ganspace" else ")"))
    found = components.find_directions(generator, config, options.method, options.k, options.samples, options.seed)
    if reader is not None:
        found = components.name_directions(found, generator, config, reader, reader_config.labels,
                                           list(range(options.seed, options.seed + NAMING_FACES)), SPAN)
    saved = components.save_discovered(model_dir, found)
    discovery = Discovery(model_dir, classifier_dir, found, options, torch.empty(0), saved, out)
    for line in discovery.lines():
        console.info(line)
    base = noise_for_seeds([options.seed], config.latent_dim)  # (1, D)
    latents = components.walks(base, found, torch.linspace(-SPAN, SPAN, COLUMNS))  # (k, COLUMNS, 1, D)
    conditions = components.face_conditions(generator, config, [options.seed])
    images = generate(generator, latents.flatten(0, 2), components.repeat_conditions(conditions, found.k * COLUMNS))
    discovery.images = images.unflatten(0, (found.k, COLUMNS))
    if out is not None:
        scale = options.scale or (2 if config.image_size < 64 else 1)
        picture = image_io.to_pil(images, nrow=COLUMNS, scale=scale)
        captions = [[f"{i}" + (f" {found.name(i)}" if found.name(i) else "")]
                    + [f"{name} {change:+.2f}" for name, change in found.top(i)] for i in range(found.k)]
        columns = [f"{offset:+g} sd" if offset else "0" for offset in discovery.offsets]
        image_io.save_image(image_io.caption_grid(picture, captions, columns), out)
        console.info(f"wrote {found.k} directions x {COLUMNS} faces to {out}")
    return discovery


@dataclass
class DirectionWalk:
    """What ``walk_direction`` drew for ``steer --direction``: faces walked along one discovered direction,
    with the interface of steering's report (``faces``, ``face_lines``, ``advice``, ``to_json``)."""

    model_dir: Path
    found: DiscoveredDirections
    index: int
    sign: int  # +1: along the direction, -1: against it (towards the attribute it is named by)
    images: torch.Tensor  # (N, F, C, H, W) in [-1, 1]: one row per face, the first frame unchanged
    strength: float
    out: Path | None
    faces: list[dict[str, Any]]  # per face: its seed, condition and frames with their offsets

    def print_summary(self, wrote: str) -> None:
        """Say what was written (a walk has no per-face readings or advice, as steering towards attributes has)."""
        console.info(wrote)

    def to_json(self) -> dict[str, Any]:
        found, index = self.found, self.index
        return {"model": str(self.model_dir), "output": _text(self.out), "method": "discovered",
                "direction": {"method": found.method, "index": index, "name": found.name(index), "sign": self.sign,
                              "sd": round(float(found.sd[index]), 4),
                              "attributes": [{"attribute": name, "change": round(change * self.sign, 4) + 0.0}
                                             for name, change in found.top(index)]},
                "settings": {"frames": self.images.shape[1], "strength": self.strength}, "faces": self.faces}


def walk_direction(choice: str, model: str | Path | None = None, *, n: int = 4, frames: int = 8,
                   strength: float = 8.0, seed: int = 0, noise: torch.Tensor | str | Path | None = None,
                   out: str | Path | None = None, scale: int | None = None, frame_ms: int = 150,
                   device: str = "auto") -> DirectionWalk:
    """Walk the faces of seeds ``seed``, ... (``n``; or the latents ``noise``) by ``strength`` along the
    discovered direction ``choice`` of ``model`` (default ``gan-celeba``): ``3``, ``sefa:3``, or the attribute
    a classifier named it by (``Smiling``, ``ganspace:Smiling``), over ``frames`` frames, the first unchanged;
    with ``out``, write the strip (.png) or animation (.gif). A digit model keeps each face's label (seed mod
    10) and moves its noise."""
    import torch

    from latentctl import images as image_io
    from latentctl.device import resolve_device
    from latentctl.latent import components
    from latentctl.latent.attributes import present_attributes
    from latentctl.latent.sampling import generate, load_latents, noise_for_seeds

    method, _, rest = choice.partition(":") if choice.split(":")[0] in DISCOVERY_METHODS else (None, "", choice)
    model_dir = lookup.resolve_model(model, DEFAULT_MODEL)
    generator, config = store.load_model(model_dir, ("gan", "cgan"), resolve_device(device))
    found = components.load_discovered(model_dir, method)
    index, sign = found.resolve(rest)
    if noise is None:
        seeds: list[int | None] = list(range(seed, seed + n))
        noise = noise_for_seeds(seeds, config.latent_dim)
    else:
        noise = noise if not isinstance(noise, str | Path) else load_latents(Path(noise), config.latent_dim)
        seeds = [None] * noise.shape[0]
    offsets = torch.linspace(0, strength, frames)
    latents = noise[:, None] + (sign * offsets)[None, :, None] * found.directions[index]  # (N, F, D)
    conditions = components.face_conditions(generator, config, list(range(seed, seed + noise.shape[0])))
    top = found.top(index)
    way = "" if not top else f" (towards {top[0][0]})" if sign * top[0][1] >= 0 else f" (away from {top[0][0]})"
    console.info(f"walking {noise.shape[0]} face(s) along {found.method} direction {index}{way}")
    images = generate(generator, latents.flatten(0, 1), components.repeat_conditions(conditions, frames))
    images = images.unflatten(0, (-1, frames))  # (N, F, C, H, W)
    out = None if out is None else Path(out)
    if out is not None:
        image_io.save_walks(images, out, scale=scale or (2 if config.image_size < 64 else 1), frame_ms=frame_ms)
    sd = float(found.sd[index])
    faces = []
    for face, face_seed in enumerate(seeds):
        about: dict[str, Any] = {}
        if conditions is not None and config.conditioned_on_attributes:
            about["attributes"] = present_attributes(config.labels, conditions[face])
        elif conditions is not None:
            about["label"] = config.labels[int(conditions[face])]
        faces.append({"face": face, "seed": face_seed, **about,
                      "frames": [{"frame": frame, "offset": round(offset, 4), "sd": round(offset / sd, 4)}
                                 for frame, offset in enumerate(offsets.tolist())]})
    return DirectionWalk(model_dir, found, index, sign, images, strength, out, faces)


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)
