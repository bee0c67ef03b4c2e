"""Steering faces as one call: a ``SteeringSession`` holds a face generator and the attribute classifier that
reads its faces, loaded together and checked to fit (as a diffusers pipeline holds its models), and
``steer_faces`` makes the ``steer`` command's strip and report from it.

Importing this module loads no torch: the CLI reads ``SteerOptions``' defaults while building ``--help``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latentctl import console, lookup
from latentctl.errors import LatentctlError, UsageError
from latentctl.latent import (
    DEFAULT_FIT,
    DEFAULT_FRAMES,
    DEFAULT_KEEP_OTHERS,
    DEFAULT_STEPS,
    DEFAULT_STRENGTH,
    DEFAULT_VIEWS,
)

if TYPE_CHECKING:
    import torch

    from latentctl.latent.directions import AttributeDirections
    from latentctl.latent.discover import DirectionWalk
    from latentctl.latent.steer import Steering, Target
    from latentctl.store import ModelConfig

CHANGED_SHOWN = 3  # attributes listed per frame as the ones that changed most


@dataclass(frozen=True)
class SteerOptions:
    """Every setting of ``steer``, with its defaults (the CLI's flags read them); see ``latent.steer``."""

    method: str = "gradient"  # gradient, direction or label
    n: int = 4  # faces, of seeds seed, seed + 1, ... (unless latents are given)
    frames: int = DEFAULT_FRAMES
    steps: int = DEFAULT_STEPS
    strength: float = DEFAULT_STRENGTH
    keep_others: float = DEFAULT_KEEP_OTHERS
    until: float | None = None
    views: int = DEFAULT_VIEWS
    reach: float = 1.0  # how far a conditioned generator's target inputs turn, 1 being the other value
    samples: int = 10_000  # faces the attribute directions are fitted on (direction method)
    fit: str = DEFAULT_FIT  # how they are fitted, one of latent.DIRECTION_FITS (direction method)
    frame_ms: int = 150  # GIF frame time
    scale: int | None = None  # nearest-neighbour upscaling of the written strip; None: 2 under 64 px, else 1
    seed: int = 0


# what steering towards attributes takes and a walk along a discovered direction does not
STEERING_ONLY = ("method", "steps", "keep_others", "until", "views", "reach", "samples", "fit")


@dataclass
class SteeringSession:
    """A face generator and the attribute classifier that steers it, loaded together and checked to fit."""

    generator: torch.nn.Module
    config: ModelConfig
    classifier: torch.nn.Module
    classifier_config: ModelConfig
    model_dir: Path
    classifier_dir: Path
    device: torch.device

    @classmethod
    def load(cls, model: str | Path | None = None, classifier: str | Path | None = None,
             device: str = "auto") -> SteeringSession:
        """Load a face GAN (default ``gan-celeba``) and an attribute classifier (default ``classifier-celeba``),
        each a folder, a registered name or a Hub repo, and refuse a pair that does not fit."""
        from latentctl.device import resolve_device
        from latentctl.latent.attributes import check_pair
        from latentctl.store import load_model

        torch_device = resolve_device(device)
        model_dir = lookup.resolve_model(model, "gan-celeba")
        classifier_dir = lookup.resolve_model(classifier, "classifier-celeba")
        generator, config = load_model(model_dir, "gan", torch_device)
        if not classifier_dir.exists():
            raise LatentctlError(f"no attribute classifier at {classifier_dir}: steering needs one",
                                 hint="train one with 'latentctl train classifier' (at the generator's --size), "
                                      "or pass --classifier PATH")
        classifier_model, classifier_config = load_model(classifier_dir, "classifier", torch_device,
                                                         option="--classifier")
        check_pair(config, classifier_config, model_dir, classifier_dir)
        return cls(generator, config, classifier_model, classifier_config, model_dir, classifier_dir, torch_device)

    @property
    def names(self) -> list[str]:
        """The classifier's attributes, in the column order of its readings."""
        return self.classifier_config.labels

    @property
    def conditioned(self) -> bool:
        """Whether the generator takes attribute inputs (trained with ``--condition attributes``)."""
        return self.config.conditioned_on_attributes

    def targets(self, to: Sequence[str] = (), away_from: Sequence[str] = ()) -> list[Target]:
        """The classifier's attributes to steer towards and away from, names matched ignoring case and
        underscores; an unknown name, or one on both sides, is a UsageError."""
        from latentctl.latent.attributes import resolve_attributes
        from latentctl.latent.steer import Target

        targets, seen = [], {}
        for values, sign, flag in ((to, +1, "--to"), (away_from, -1, "--away-from")):
            for name in resolve_attributes(values, self.names, flag):
                if name in seen and seen[name] != sign:
                    raise UsageError(f"{name} is both in --to and --away-from", flag)
                if name not in seen:
                    seen[name] = sign
                    targets.append(Target(self.names.index(name), name, sign))
        return targets

    def check_method(self, method: str) -> None:
        """The label method needs a generator conditioned on attributes; directions are fitted to one without."""
        if method == "label" and not self.conditioned:
            raise UsageError(f"the model takes no attributes to turn ({self.model_dir}): it needs a model trained "
                             "with 'latentctl train gan --condition attributes'", "--method")
        if method == "direction" and self.conditioned:
            raise UsageError(f"a model conditioned on attributes ({self.model_dir}) takes --method label or "
                             "gradient: directions are fitted to an unconditional GAN's noise", "--method")

    def check_reach(self, reach: float) -> None:
        """A reach turns attribute inputs, which only a generator conditioned on attributes has."""
        if reach != 1 and not self.conditioned:
            raise UsageError(f"the model takes no attributes to turn ({self.model_dir}): --reach needs a model "
                             "trained with 'latentctl train gan --condition attributes'", "--reach")

    def check(self, to: Sequence[str], away_from: Sequence[str], options: SteerOptions) -> list[Target]:
        """The targets of ``to`` and ``away_from``, once the method and reach are checked to fit the model."""
        from latentctl.latent.directions import check_fit

        targets = self.targets(to, away_from)
        self.check_method(options.method)
        check_fit(options.fit)
        self.check_reach(options.reach)
        return targets

    def directions(self, samples: int = SteerOptions.samples, fit: str = SteerOptions.fit) -> AttributeDirections:
        """The attribute directions of this generator read by this classifier, fitted by ``fit``: cached, or
        fitted now on ``samples`` generated faces (saying so on stderr)."""
        from latentctl.latent.attributes import load_directions

        fitted, _ = load_directions(
            self.model_dir, self.classifier_dir, self.generator, self.classifier, self.names,
            self.config.latent_dim, samples, fit=fit,
            on_fit=lambda count: console.info(f"fitting attribute directions ({fit}) on {count:,} generated faces "
                                              "(once per generator, classifier and fit; cached)"))
        return fitted


@dataclass
class SteerReport:
    """What ``steer_faces`` made: the walks (images, latents, readings) and the per-face report."""

    session: SteeringSession
    options: SteerOptions
    targets: list[Target]
    steering: Steering  # latents (N, F, D), images (N, F, C, H, W) in [-1, 1], probabilities (N, F, A), ...
    seeds: list[int | None]  # of each face; None for latents given
    out: Path | None = None  # the strip or GIF written
    faces: list[dict[str, Any]] = field(default_factory=list)  # per face and frame, as ``--json`` lists them
    boundaries: dict[str, dict[str, Any]] | None = None  # the direction method's: per target, fit and accuracy

    @property
    def images(self) -> torch.Tensor:
        """The frames (N, F, C, H, W) in [-1, 1]: one row per face, the first frame unchanged."""
        return self.steering.images

    @property
    def not_reached(self) -> dict[str, int]:
        """Per target that some faces missed: how many the classifier reads on its wrong side at the end."""
        counts = {}
        for target in self.targets:
            last = [face["frames"][-1]["targets"][target.name] for face in self.faces]
            missed = sum(p <= 0.5 if target.sign > 0 else p >= 0.5 for p in last)
            if missed:
                counts[target.name] = missed
        return counts

    def face_lines(self) -> list[str]:
        """One line per face: each target's probability at the first and the last frame."""
        lines = []
        for face in self.faces:
            first, last = face["frames"][0]["targets"], face["frames"][-1]["targets"]
            moves = ", ".join(f"{name} {first[name]:.2f} -> {last[name]:.2f}" for name in first)
            seed = "" if face["seed"] is None else f" (seed {face['seed']})"
            lines.append(f"face {face['face']}{seed}: {moves}")
        return lines

    def advice(self) -> list[str]:
        """Per target some faces missed: how many, and which settings may get them there."""
        from latentctl.latent.attributes import MAX_REACH

        options, conditioned, short = self.options, self.session.conditioned, self.not_reached
        gradient = options.method == "gradient"
        turn_further = conditioned and options.reach < MAX_REACH
        further = f"--reach {min(2 * options.reach, MAX_REACH):g}" if turn_further else None
        lines = []
        for target in (t for t in self.targets if t.name in short):
            missed = f"reach {target.name} (read below" if target.sign > 0 else f"lose {target.name} (read above"
            advice = (f"try a longer walk, --strength {options.strength * 1.5:g}"
                      + (", a weaker --keep-others" if options.keep_others > 0 and gradient else "")
                      + (f", {further}" if further and gradient else "")
                      + (" or --method direction" if gradient and not conditioned else ""))
            if options.method == "label":  # the noise is fixed: only a longer turn of the input or the noise helps
                advice = ("the generator does not show it from its input alone: try "
                          + (f"{further} or " if further else "") + "--method gradient")
            lines.append(f"{short[target.name]} of {len(self.faces)} faces did not {missed} 0.5 at the last "
                         f"frame): {advice}")
        return lines

    def print_summary(self, wrote: str) -> None:
        """Print each face's line, then ``wrote`` (what was written), then the advice for the targets missed."""
        for line in self.face_lines():
            console.info(line)
        console.info(wrote)
        for line in self.advice():
            console.warn(line)

    def to_json(self) -> dict[str, Any]:
        """The ``steer --json`` document, without its "command" key."""
        options = self.options
        return {"model": str(self.session.model_dir), "classifier": str(self.session.classifier_dir),
                "output": None if self.out is None else str(self.out), "method": options.method,
                "to": [t.name for t in self.targets if t.sign > 0],
                "away_from": [t.name for t in self.targets if t.sign < 0],
                "settings": {"steps": options.steps, "strength": options.strength,
                             "keep_others": options.keep_others, "until": options.until, "views": options.views,
                             "frames": options.frames, "reach": options.reach,
                             "frame_steps": self.steering.frame_steps},
                **({} if self.boundaries is None else {"boundaries": self.boundaries}),
                "not_reached": self.not_reached, "faces": self.faces}


def steer_faces(session: SteeringSession | None = None, *, to: Sequence[str] = (), away_from: Sequence[str] = (),
                out: str | Path | None = None, options: SteerOptions | None = None,
                noise: torch.Tensor | str | Path | None = None, model: str | Path | None = None,
                classifier: str | Path | None = None, device: str = "auto",
                attributes: torch.Tensor | None = None, direction: str | None = None
                ) -> SteerReport | DirectionWalk:
    """Turn faces towards the ``to`` attributes and away from the ``away_from`` ones, keeping the others, and
    write the strip (one row per face, one column per frame; .png or .gif) to ``out`` when given.

    The faces are those of seeds ``options.seed``, ... (``options.n`` of them), or ``noise``: latents (N, D) or
    a file written by ``sample --save-latents`` or ``invert``. A generator conditioned on attributes starts from
    ``attributes`` (N, A_g) in [0, 1] when given (or the file's, which ``invert`` writes), else from real
    mixes drawn per seed. Without a ``session``, one is loaded from ``model``,
    ``classifier`` and ``device``. Settings that do not go together, or that the model cannot take, are
    UsageErrors naming the CLI's flag.

    With ``direction`` (a number or a name, see ``latent.discover.walk_direction``), the faces walk that
    direction found by ``directions discover`` instead, on any generator and without a classifier."""
    options = options or SteerOptions()
    out = check_request(to, away_from, out, options, direction)
    if direction is not None:
        from latentctl.latent.discover import walk_direction

        steering_only = [f"--{name.replace('_', '-')}" for name in STEERING_ONLY
                         if getattr(options, name) != getattr(SteerOptions, name)]
        if steering_only or classifier is not None:
            unused = ", ".join(steering_only + ["--classifier"] * (classifier is not None))
            raise UsageError(f"--direction walks a discovered direction, which takes no {unused}", "--direction")
        return walk_direction(direction, model, n=options.n, frames=options.frames, strength=options.strength,
                              seed=options.seed, noise=noise, out=out, scale=options.scale,
                              frame_ms=options.frame_ms, device=device)
    session = session or SteeringSession.load(model, classifier, device)
    targets = session.check(to, away_from, options)
    return _steer(session, targets, options, noise, out, attributes)


def check_request(to: Sequence[str], away_from: Sequence[str], out: str | Path | None, options: SteerOptions,
                  direction: str | None = None) -> Path | None:
    """Refuse, before any model is loaded, settings that do not go together and an output that cannot be
    written (UsageErrors naming the CLI's flag); return the output path."""
    if options.frames > options.steps + 1 and direction is None:  # a direction walk takes no steps
        raise UsageError(f"{options.frames} frames need at least {options.frames - 1} steps", "--frames")
    if out is not None:
        from latentctl import images as image_io

        out = Path(out)
        image_io.check_writable(out)
        if out.suffix.lower() not in (".png", ".gif"):
            raise UsageError(f"{out.name}: end the output name in .png or .gif", "OUT")
    if direction is not None and (to or away_from):
        raise UsageError("--direction walks a discovered direction: leave out --to and --away-from", "--direction")
    if direction is None and not to and not away_from:
        raise UsageError("name at least one attribute with --to or --away-from (or a --direction)", "--to")
    return out


def _steer(session: SteeringSession, targets: list[Target], options: SteerOptions,
           noise: torch.Tensor | str | Path | None, out: Path | None,
           start_attributes: torch.Tensor | None = None) -> SteerReport:
    from latentctl import images as image_io
    from latentctl.latent.attributes import steering_attributes
    from latentctl.latent.sampling import load_latents, load_saved_attributes, noise_for_seeds
    from latentctl.latent.steer import SteerSettings, steer

    latent_dim = session.config.latent_dim
    if noise is None:
        seeds: list[int | None] = list(range(options.seed, options.seed + options.n))
        noise = noise_for_seeds(seeds, latent_dim)
    else:
        if isinstance(noise, str | Path):
            if start_attributes is None and session.conditioned:  # an inverted photo's, when the file has them
                start_attributes = load_saved_attributes(Path(noise), session.config.labels)
            noise = load_latents(Path(noise), latent_dim)
        seeds = [None] * noise.shape[0]
    attributes = None
    if session.conditioned:  # face i's attributes drawn with seed S+i, as 'sample' draws them, unless given
        attributes = steering_attributes(session.generator.attribute_prior, session.config.labels, targets,
                                         list(range(options.seed, options.seed + noise.shape[0])),
                                         options.method == "label", keep_others=options.keep_others > 0,
                                         reach=options.reach, start=start_attributes)
    settings = SteerSettings(method=options.method, steps=options.steps, strength=options.strength,
                             keep_others=options.keep_others, until=options.until, frames=options.frames,
                             views=options.views, seed=options.seed)
    direction = boundaries = None
    if options.method == "direction":
        fitted = session.directions(options.samples, options.fit)
        for target in targets:
            console.info(fitted.describe(target.index))
        boundaries = fitted.boundaries([t.index for t in targets])
        direction = fitted.move([(t.index, t.sign) for t in targets], keep=options.keep_others > 0)
    console.info(f"steering {noise.shape[0]} face(s) {_describe(targets)} ({options.method}, {options.steps} "
                 f"steps, strength {options.strength:g}, keep-others {options.keep_others:g})")
    result = steer(session.generator, session.classifier, noise, targets, settings, direction, attributes=attributes)
    if out is not None:
        scale = options.scale or (2 if session.config.image_size < 64 else 1)
        image_io.save_walks(result.images, out, scale=scale, frame_ms=options.frame_ms)
    return SteerReport(session, options, targets, result, seeds, out, _face_reports(result, session, targets, seeds),
                       boundaries)


def _describe(targets: list[Target]) -> str:
    towards = [t.name for t in targets if t.sign > 0]
    away = [t.name for t in targets if t.sign < 0]
    return " and ".join(part for part in (f"towards {', '.join(towards)}" if towards else "",
                                          f"away from {', '.join(away)}" if away else "") if part)


def _face_reports(result: Steering, session: SteeringSession, targets: list[Target],
                  seeds: list[int | None]) -> list[dict[str, Any]]:
    """Per face and frame: the targets' probabilities and the other attributes that changed most."""
    from latentctl.latent.attributes import present_attributes

    names = session.names
    target_names = {t.name for t in targets}
    faces = []
    for face, probabilities in enumerate(result.probabilities.tolist()):  # (F, A) per face
        start = probabilities[0]
        frames = []
        for frame, (step, row) in enumerate(zip(result.frame_steps, probabilities, strict=True)):
            changes = sorted(((name, row[i] - start[i]) for i, name in enumerate(names) if name not in target_names),
                             key=lambda item: -abs(item[1]))[:CHANGED_SHOWN]
            frames.append({"frame": frame, "step": min(step, int(result.steps_taken[face])),
                           "targets": {t.name: round(row[t.index], 4) for t in targets},
                           "changed": [{"attribute": name, "from": round(start[names.index(name)], 4),
                                        "to": round(row[names.index(name)], 4)} for name, _ in changes]})
        about: dict[str, Any] = {}
        if result.attributes is not None:  # what the generator's attribute input said, first and last frame
            labels = session.config.labels
            about["attributes"] = {when: present_attributes(labels, result.attributes[face, frame])
                                   for when, frame in (("from", 0), ("to", -1))}
        faces.append({"face": face, "seed": seeds[face], "steps_taken": int(result.steps_taken[face]),
                      **about, "frames": frames})
    return faces
