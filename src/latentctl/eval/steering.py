"""How well steering works, judged as a person would: by a second classifier that did not steer (``eval steer``).

The classifier that steers can be fooled by its own gradient, so every number is read by a *judge* trained
independently. Per target attribute, on faces the judge reads as not having it: success (the judge reads it
at the last frame), others (mean change of the judge's other readable attributes) and moved (mean pixel
change in [0, 1]), for each method with and without keep-others. The methods are steering's (gradient,
direction under each fit, label) and ``component``: the SeFa direction that changes the attribute most.

Importing this module loads no torch: the CLI reads ``SteerEvalOptions``' defaults while building ``--help``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latentctl import console, lookup
from latentctl.errors import LatentctlError, UsageError
from latentctl.latent import DEFAULT_FIT
from latentctl.latent.session import SteeringSession, SteerOptions

if TYPE_CHECKING:
    import torch

    from latentctl.latent.directions import AttributeDirections
    from latentctl.latent.steer import SteerSettings, Target
    from latentctl.store import ModelConfig

READABLE = 0.8  # the judge reads an attribute when its validation balanced accuracy is at least this
DEFAULT_ATTRIBUTES = ("Male", "Smiling", "Eyeglasses")
METHODS = ("gradient", "direction", "component", "label")
COMPONENTS = 20  # SeFa directions searched for the one that changes a target most (the component method)
# a move along a fixed direction for (method, fit, target column, keep-others): the unit move (D,), or None for
# the methods that need none, and the fit to report in the row
MoveFor = Callable[[str, "str | None", int, bool], "tuple[torch.Tensor | None, str | None]"]


@dataclass(frozen=True)
class SteerEvalOptions:
    """Every setting of ``eval steer``, with its defaults; the walk's are ``steer``'s."""

    attributes: tuple[str, ...] = DEFAULT_ATTRIBUTES
    faces: int = 64  # per attribute, among those the judge reads as not having it
    steps: int = SteerOptions.steps
    strength: float = SteerOptions.strength
    keep_others: float = SteerOptions.keep_others  # scored at this weight and at 0
    until: float | None = SteerOptions.until
    views: int = SteerOptions.views
    reach: float = SteerOptions.reach
    samples: int = SteerOptions.samples
    seed: int = SteerOptions.seed
    methods: tuple[str, ...] = ()  # of METHODS; (): gradient and direction, or gradient and label when conditioned
    fits: tuple[str, ...] = ()  # the direction method is scored fitted each of these ways; (): DEFAULT_FIT


@dataclass
class SteerScore:
    """One row of the evaluation: a target attribute steered by one method, with or without keep-others."""

    attribute: str
    method: str
    fit: str | None  # direction: how it was fitted; component: the SeFa direction, sefa:N; else None
    keep_others: float
    faces: int  # 0 when the judge read every face searched as having the attribute: nothing was scored
    success: float | None  # the judge reads the attribute at the last frame
    steerer_success: float | None  # the steering classifier does (a gap to ``success`` = fooling the steerer)
    others: float | None  # mean |change| of the judge's other readable attributes
    moved: float | None  # mean |pixel change| in [0, 1]
    seconds: float

    def to_dict(self) -> dict:
        return {key: round(value, 4) if isinstance(value, float) else value for key, value in asdict(self).items()}


@dataclass
class SteerEvaluation:
    """What ``evaluate_steer`` measured, one score per attribute, method and keep-others weight."""

    session: SteeringSession
    judge_dir: Path
    readable: list[str]  # the judge's attributes it reads well enough to count in ``others``
    options: SteerEvalOptions
    scores: list[SteerScore]
    plot: Path | None = None
    boundaries: dict[str, dict[str, dict]] = field(default_factory=dict)  # per fit and target: held-out accuracy

    def panels(self) -> dict[str, dict[str, dict[str, float]]]:
        """The scores as ``images.plot_bars`` draws them: success and the others' change per attribute and run."""
        panels: dict[str, dict[str, dict[str, float]]] = {"success (judge)": {}, "change of the other attributes": {}}
        for score in self.scores:
            if score.faces == 0:
                continue
            series = f"{_method(score, each=False)}, keep-others {score.keep_others:g}"
            panels["success (judge)"].setdefault(score.attribute, {})[series] = score.success
            panels["change of the other attributes"].setdefault(score.attribute, {})[series] = score.others
        return panels

    def print_table(self) -> None:
        """Print the scores, one row per attribute, method and keep-others (stderr)."""
        console.print_table("steering, read by the judge", ["attribute", "method", "keep-others", "faces", "success",
                                                            "steerer says", "others", "moved", "time"],
                            [[s.attribute, _method(s), f"{s.keep_others:g}", s.faces, _cell(s.success, "{:.0%}"),
                              _cell(s.steerer_success, "{:.0%}"), _cell(s.others, "{:.3f}"),
                              _cell(s.moved, "{:.3f}"), f"{s.seconds:.1f}s"] for s in self.scores])
        if self.boundaries:
            console.print_table("the fitted boundaries' held-out accuracy (balanced), read by the steering classifier",
                                ["attribute", "fit", "read confidently", "all faces"],
                                [[name, fit, _cell(row["accuracy_confident"], "{:.1%}"), f"{row['accuracy_all']:.1%}"]
                                 for fit, rows in self.boundaries.items() for name, row in rows.items()])

    def to_json(self) -> dict[str, Any]:
        """The ``eval steer --json`` document, without its "command" key."""
        options = self.options
        return {"model": str(self.session.model_dir), "classifier": str(self.session.classifier_dir),
                "judge": str(self.judge_dir), "readable": self.readable,
                "settings": {"steps": options.steps, "strength": options.strength, "keep_others": options.keep_others,
                             "until": options.until, "views": options.views, "reach": options.reach,
                             "faces": options.faces, "samples": options.samples},
                "plot": None if self.plot is None else str(self.plot), "boundaries": self.boundaries,
                "scores": [s.to_dict() for s in self.scores]}


def evaluate_steer(session: SteeringSession | None = None, *, judge: str | Path,
                   options: SteerEvalOptions | None = None, plot: str | Path | None = None,
                   model: str | Path | None = None, classifier: str | Path | None = None,
                   device: str = "auto") -> SteerEvaluation:
    """Steer faces towards each of ``options.attributes`` with each of ``options.methods`` (by default gradient
    and direction, or on a generator conditioned on attributes gradient and label; the direction method fitted
    each way of ``options.fits``), with and without keep-others, and score the results read by ``judge`` (a
    second classifier: folder, registered name or Hub repo); draw the scores as a bar chart to ``plot`` when
    given. Without a ``session``, one is loaded from ``model``, ``classifier`` and ``device``."""
    from latentctl import images as image_io
    from latentctl.latent.attributes import resolve_attributes
    from latentctl.latent.steer import SteerSettings

    options = options or SteerEvalOptions()
    plot = None if plot is None else Path(plot)
    if plot is not None:
        image_io.check_writable(plot)
    session = session or SteeringSession.load(model, classifier, device)
    targets = list(dict.fromkeys(resolve_attributes(options.attributes, session.names, "--attribute")))
    session.check_reach(options.reach)
    judge_model, judge_config, judge_dir, readable = load_judge(session, judge, targets)
    conditioned = session.conditioned  # conditioned on attributes: label and gradient, no directions
    methods, fits = check_methods(options, conditioned)
    directions = {fit: session.directions(options.samples, fit) for fit in fits}
    columns = [session.names.index(name) for name in targets]
    boundaries = {fit: fitted.boundaries(columns) for fit, fitted in directions.items()}
    move_for = _moves(session, directions, fits, options.seed) if directions else None
    settings = SteerSettings(steps=options.steps, strength=options.strength, until=options.until, frames=2,
                             views=options.views, seed=options.seed)  # first, last frame
    keep = options.keep_others
    console.info(f"steering {options.faces} faces towards each of {', '.join(targets)}: {', '.join(methods)}"
                 + (f" (fits {', '.join(fits)})" if fits else "") + f", keep-others {keep:g} and 0, judged by "
                 f"{judge_dir} on {len(readable)} attributes it reads")
    scores = evaluate_steering(session.generator, session.classifier, session.names, judge_model,
                               judge_config.labels, readable, session.config.latent_dim, targets, settings,
                               keep_values=(keep, 0.0) if keep > 0 else (0.0,), methods=methods, fits=fits,
                               move_for=move_for, faces=options.faces, seed=options.seed,
                               generator_labels=session.config.labels if conditioned else None, reach=options.reach)
    for name in dict.fromkeys(s.attribute for s in scores if s.faces == 0):
        console.warn(f"the judge reads every face it searched as having {name}, so none was steered towards it "
                     f"(its rows are empty); a judge this sure may be undertrained, or the GAN always draws it")
    evaluation = SteerEvaluation(session, judge_dir, readable, options, scores, plot, boundaries)
    if plot is not None:
        image_io.plot_bars(evaluation.panels(), plot, title=f"steering judged by {judge_dir.name}")
    return evaluation


def check_methods(options: SteerEvalOptions, conditioned: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The methods to score and the fits of the direction method (none when no method needs fitted directions);
    an unknown method or fit, or one the model cannot take, is a UsageError of its flag."""
    from latentctl.latent.directions import check_fit

    methods = options.methods or (("gradient", "label") if conditioned else ("gradient", "direction"))
    for method in methods:
        if method not in METHODS:
            raise UsageError(f"unknown method {method!r}: use {', '.join(METHODS)}", "--method")
        if conditioned and method in ("direction", "component"):
            raise UsageError(f"a model conditioned on attributes takes --method gradient or label, not {method}: "
                             "directions are fitted to an unconditional GAN's noise", "--method")
        if not conditioned and method == "label":
            raise UsageError("the model takes no attributes to turn: --method label needs a model trained with "
                             "'latentctl train gan --condition attributes'", "--method")
    fits = tuple(dict.fromkeys(options.fits or (DEFAULT_FIT,)))
    for fit in fits:
        check_fit(fit)
    # a component keeps the others with the kept attributes' fitted normals, of the first fit
    return tuple(dict.fromkeys(methods)), fits if {"direction", "component"} & set(methods) else ()


def _moves(session: SteeringSession, directions: dict[str, AttributeDirections], fits: tuple[str, ...],
           seed: int) -> MoveFor:
    """The unit moves of the direction and component methods (see ``MoveFor``). The component is the one of
    the first COMPONENTS SeFa directions whose walk changes the target's probability most, as the steering
    classifier reads 32 faces, turned so that it grows; keep-others projects out the kept attributes' normals
    of the first fit, as for a fitted direction."""
    from functools import cache

    from latentctl.latent import components
    from latentctl.latent.discover import NAMING_FACES, SPAN

    @cache
    def discovered() -> components.DiscoveredDirections:
        found = components.find_directions(session.generator, session.config, "sefa",
                                           min(COMPONENTS, session.config.latent_dim))
        return components.name_directions(found, session.generator, session.config, session.classifier,
                                          session.names, list(range(seed, seed + NAMING_FACES)), SPAN)

    def move_for(method: str, fit: str | None, column: int, keep: bool) -> tuple[torch.Tensor | None, str | None]:
        if method == "direction":
            return directions[fit].move([(column, +1)], keep), fit
        if method == "component":
            index, sign = discovered().strongest(column)
            move = sign * discovered().directions[index]
            return directions[fits[0]].condition(move, [column], keep), f"sefa:{index}"
        return None, None

    return move_for


def load_judge(session: SteeringSession, judge: str | Path, targets: list[str]
               ) -> tuple[torch.nn.Module, ModelConfig, Path, list[str]]:
    """Load the ``judge`` classifier (folder, registered name or Hub repo) for ``session``'s faces; return it,
    its config, its folder and the attributes it reads well enough to count. Refuse the steering classifier
    itself and a judge without one of ``targets``."""
    from latentctl.files import file_sha256
    from latentctl.latent.attributes import check_pair
    from latentctl.store import WEIGHTS_FILE, load_model

    judge_dir = lookup.resolve_model(judge, "")
    judge_model, judge_config = load_model(judge_dir, "classifier", session.device, option="--judge")
    check_pair(session.config, judge_config, session.model_dir, judge_dir, option="--judge")
    if file_sha256(judge_dir / WEIGHTS_FILE) == file_sha256(session.classifier_dir / WEIGHTS_FILE):
        raise LatentctlError("the judge is the classifier that steers: it would grade its own homework",
                             hint="train a second classifier ('latentctl train classifier --seed 1 --out judge') "
                                  "and pass it with --judge")
    missing = [name for name in targets if name not in judge_config.labels]
    if missing:
        raise LatentctlError(f"the judge {judge_dir} has no attribute {', '.join(missing)}",
                             hint="use a judge trained on the same attributes")
    readable = readable_attributes(judge_config.labels, judge_config.training.get("validation", {})
                                   .get("balanced_accuracy"))
    return judge_model, judge_config, judge_dir, readable


def judged_walk(judge: torch.nn.Module, first: torch.Tensor, last: torch.Tensor, column: int,
                others: list[int]) -> dict[str, float]:
    """How the judge reads a walk from ``first`` to ``last`` faces (N, C, S, S): success (the share it reads
    as having attribute ``column`` at the end), others (mean |change| of its probabilities of the ``others``)
    and moved (mean |pixel change| in [0, 1])."""
    from latentctl.eval.reading import predict_probabilities

    judged_first, judged_last = predict_probabilities(judge, first), predict_probabilities(judge, last)
    return {"success": (judged_last[:, column] > 0.5).float().mean().item(),
            "others": (judged_last[:, others] - judged_first[:, others]).abs().mean().item() if others else 0.0,
            "moved": ((last - first).abs().mean() / 2).item()}


def readable_attributes(judge_names: list[str], validation: dict[str, float] | None) -> list[str]:
    """The attributes a judge can read: validation balanced accuracy >= READABLE (all of them if unknown)."""
    if not validation:
        return list(judge_names)
    return [name for name in judge_names if validation.get(name, 0.0) >= READABLE]


def evaluate_steering(generator: torch.nn.Module, classifier: torch.nn.Module, names: list[str],
                      judge: torch.nn.Module, judge_names: list[str], readable: list[str], latent_dim: int,
                      attributes: list[str], settings: SteerSettings, keep_values: tuple[float, ...],
                      methods: tuple[str, ...], fits: tuple[str, ...] = (), move_for: MoveFor | None = None,
                      faces: int = 64, seed: int = 0, generator_labels: list[str] | None = None,
                      reach: float = 1.0) -> list[SteerScore]:
    """Score steering towards each of ``attributes`` for every method (the direction method once per fit of
    ``fits``) and keep-others weight, on the same faces. ``move_for`` gives the fixed moves of the direction and
    component methods. ``generator_labels``: the attributes of a generator conditioned on them, whose targets'
    inputs turn ``reach`` times as far and whose other inputs are held with keep-others, or follow the targets
    without it (``latent.attributes.turned_attributes``)."""
    from latentctl.latent.attributes import steering_attributes, turned_attributes
    from latentctl.latent.steer import Target, steer

    runs = [(method, fit) for method in methods for fit in (fits if method == "direction" else (None,))]
    scores = []
    for attribute in attributes:
        column, judge_column = names.index(attribute), judge_names.index(attribute)
        target = [Target(column, attribute, +1)]
        draw = None
        if generator_labels is not None:
            def draw(seeds: list[int], target: list[Target] = target) -> tuple[torch.Tensor, torch.Tensor]:
                return steering_attributes(generator.attribute_prior, generator_labels, target, seeds,
                                           label_only="label" in methods, reach=reach)
        noise, inputs = starting_faces(generator, judge, judge_column, latent_dim, faces, seed, draw)
        others = [judge_names.index(name) for name in readable if name != attribute]
        if noise.shape[0] == 0:  # every face already has it, as the judge reads them
            scores += [SteerScore(attribute=attribute, method=method, fit=fit, keep_others=keep, faces=0,
                                  success=None, steerer_success=None, others=None, moved=None, seconds=0.0)
                       for method, fit in runs for keep in keep_values]
            continue
        inputs_by_keep = {keep: inputs if inputs is None or keep > 0 else  # without keep-others: entangled
                          (inputs[0], turned_attributes(generator.attribute_prior, generator_labels, target,
                                                        inputs[0], keep_others=False, reach=reach))
                          for keep in keep_values}
        for method, fit in runs:
            for keep in keep_values:
                direction, shown_fit = (None, fit) if move_for is None else move_for(method, fit, column, keep > 0)
                # a component is walked as a fitted direction is: a fixed unit move
                run_settings = replace(settings, method="direction" if method == "component" else method,
                                       keep_others=keep)
                started = time.perf_counter()
                result = steer(generator, classifier, noise, target, run_settings, direction,
                               attributes=inputs_by_keep[keep])
                seconds = time.perf_counter() - started
                judged = judged_walk(judge, result.images[:, 0], result.images[:, -1], judge_column, others)
                scores.append(SteerScore(
                    attribute=attribute, method=method, fit=shown_fit, keep_others=keep, faces=noise.shape[0],
                    steerer_success=(result.probabilities[:, -1, column] > 0.5).float().mean().item(),
                    seconds=seconds, **judged))
    return scores


def starting_faces(generator: torch.nn.Module, judge: torch.nn.Module, column: int, latent_dim: int, faces: int,
                   seed: int, draw: Callable[[list[int]], tuple[torch.Tensor, torch.Tensor]] | None = None,
                   ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
    """Return the latents (<= faces, D) of the first seeds from ``seed`` on whose faces the judge reads as
    not having attribute ``column``; a pool of up to 40 x ``faces`` seeds is searched.

    For a generator conditioned on attributes, ``draw`` gives each seed's start and end attribute inputs,
    returned (for the chosen faces) beside the latents; None otherwise."""
    import torch

    from latentctl.eval.reading import predict_probabilities
    from latentctl.latent.sampling import noise_for_seeds

    found: list[torch.Tensor] = []
    starts: list[torch.Tensor] = []
    ends: list[torch.Tensor] = []
    count, start, pool = 0, seed, max(faces, 64)
    device = next(generator.parameters()).device
    while count < faces and start < seed + 40 * faces:
        seeds = list(range(start, start + pool))
        noise = noise_for_seeds(seeds, latent_dim)
        begin, end = draw(seeds) if draw is not None else (None, None)
        with torch.inference_mode():
            images = generator(noise.to(device)) if begin is None else generator(noise.to(device), begin.to(device))
        keep = predict_probabilities(judge, images)[:, column] < 0.5
        found.append(noise[keep][:faces - count])
        if begin is not None and end is not None:
            starts.append(begin[keep][:faces - count])
            ends.append(end[keep][:faces - count])
        count += found[-1].shape[0]
        start += pool
    noise = torch.cat(found) if found else torch.empty(0, latent_dim)
    return noise, ((torch.cat(starts), torch.cat(ends)) if starts else None)


def _method(score: SteerScore, each: bool = True) -> str:
    """The method as a person reads it, with its fit; without ``each``, a component's number left out (it differs
    from one attribute to the next)."""
    fit = score.fit if each or score.fit is None else score.fit.split(":")[0]
    return score.method if fit is None else f"{score.method} ({fit})"


def _cell(value: float | None, form: str) -> str:
    return "-" if value is None else form.format(value)
