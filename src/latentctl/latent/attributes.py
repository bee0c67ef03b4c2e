"""Attribute names as users type them (and the ``attributes`` listing), the generator/classifier pairing that
steering needs, and the attribute inputs of a generator conditioned on them."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latentctl import console, paths, store
from latentctl.errors import LatentctlError, UsageError

if TYPE_CHECKING:
    import torch

MAX_REACH = 4.0  # how far past the trained value steering may turn an attribute input


def normalise(name: str) -> str:
    """``5_o_Clock_Shadow``, ``5 o clock shadow`` and ``5oclockshadow`` all become ``5oclockshadow``."""
    return "".join(character for character in name.lower() if character.isalnum())


def match_attribute(name: str, names: list[str], listing: str = "'latentctl attributes' lists") -> str:
    """Return the attribute of ``names`` that ``name`` means (case and underscores ignored).

    Raises LatentctlError with the closest names as a suggestion and a pointer to the full list (``listing``
    says where it is: "'latentctl attributes' lists", or "the model has")."""
    by_key = {normalise(candidate): candidate for candidate in names}
    key = normalise(name)
    if key in by_key:
        return by_key[key]
    close = difflib.get_close_matches(key, list(by_key), n=3, cutoff=0.6)
    suggestion = f"did you mean {' or '.join(by_key[k] for k in close)}? " if close else ""
    raise LatentctlError(f"unknown attribute {name!r}",
                         hint=f"{suggestion}{listing} all {len(names)}: "
                              f"{', '.join(names[:6])}, ...")


def resolve_attributes(values: Sequence[str], names: list[str], option: str) -> list[str]:
    """Return the attribute of ``names`` each of ``values`` means; an unknown one is a UsageError of ``option``
    that suggests the closest names."""
    try:
        return [match_attribute(value, names) for value in values]
    except LatentctlError as error:
        raise UsageError(f"{error.message}; {error.hint}", option) from None


def check_celeba_spelling(values: Sequence[str], option: str) -> None:
    """Raise a UsageError of ``option`` for a value that is not one of CelebA's 40 names but close to one (a typo,
    "Mael"); values unlike any of them are left alone: a classifier trained on other labels may know them."""
    from latentctl.data.celeba import CELEBA_ATTRIBUTES

    names = list(CELEBA_ATTRIBUTES)
    keys = [normalise(name) for name in names]
    misspelt = [value for value in values
                if normalise(value) not in keys and difflib.get_close_matches(normalise(value), keys, n=1, cutoff=0.6)]
    resolve_attributes(misspelt, names, option)


@dataclass
class AttributeListing:
    """The attributes steering and classification know: a classifier's, with the share of its training faces
    that have each and how well it reads each on the validation split, or CelebA's names without one."""

    classifier_dir: Path | None  # None: no classifier trained yet
    rows: list[dict[str, Any]]  # {"name": ..., "base_rate"?: ..., "balanced_accuracy"?: ...}

    def to_json(self) -> dict[str, Any]:
        return {"classifier": None if self.classifier_dir is None else str(self.classifier_dir),
                "attributes": self.rows}

    def print_table(self) -> None:
        """Print the names, with the base rates and balanced accuracies when known (stderr)."""
        rows, source = self.rows, self.classifier_dir
        columns = ["attribute"] + [key for key in ("base_rate", "balanced_accuracy") if any(key in r for r in rows)]
        console.print_table(f"attributes ({source})" if source else "CelebA attributes", columns,
                            [[r["name"], *(_percent(r.get(key)) for key in columns[1:])] for r in rows])


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def list_attributes(classifier: str | Path | None = None) -> AttributeListing:
    """Return the attributes of ``classifier`` (a folder, registered name or Hub repo; default
    ``classifier-celeba``), or CelebA's 40 names when none was given and the default is not trained yet."""
    from latentctl import lookup
    from latentctl.data.celeba import CELEBA_ATTRIBUTES

    classifier_dir = lookup.resolve_model(classifier, "classifier-celeba")
    if classifier is None and not classifier_dir.exists():
        console.info("no classifier trained yet: CelebA's attribute names "
                     "(train one with 'latentctl train classifier' for base rates)")
        return AttributeListing(None, [{"name": name} for name in CELEBA_ATTRIBUTES])
    config = store.read_config(classifier_dir, "classifier", option="--classifier")
    rates = config.training.get("base_rates") or {}
    balanced = config.training.get("validation", {}).get("balanced_accuracy", {})
    return AttributeListing(classifier_dir, [{"name": name, **({"base_rate": rates[name]} if name in rates else {}),
                                              **({"balanced_accuracy": balanced[name]} if name in balanced else {})}
                                             for name in config.labels])


def check_pair(generator_config: store.ModelConfig, classifier_config: store.ModelConfig, generator_dir: Path,
               classifier_dir: Path, option: str = "--classifier") -> None:
    """Refuse a classifier that cannot read the generator's images as they come out of it."""
    size, channels = generator_config.image_size, generator_config.channels
    if (classifier_config.image_size, classifier_config.channels) != (size, channels):
        raise LatentctlError(
            f"{classifier_dir} reads {classifier_config.channels}x{classifier_config.image_size}x"
            f"{classifier_config.image_size} images, {generator_dir} draws {channels}x{size}x{size}",
            hint=f"train a classifier at the generator's size: 'latentctl train classifier --size {size}', "
                 f"and pass it with {option}")
    if _rounded(classifier_config.normalization) != _rounded(generator_config.normalization):
        raise LatentctlError(
            f"{classifier_dir} expects pixels normalised with {classifier_config.normalization}, "
            f"{generator_dir} draws them with {generator_config.normalization}",
            hint="use a classifier trained by latentctl (pixels in [-1, 1], as its generators draw them)")
    if generator_config.labels and not generator_config.conditioned_on_attributes:
        raise LatentctlError(f"{generator_dir} is a conditional digit model; steering works on face models",
                             hint="pass --model with a face GAN made by 'latentctl train gan'")


def present_attributes(labels: list[str], row) -> list[str]:
    """The names of ``labels`` whose attribute input in ``row`` (A,), in [0, 1] or past it, is at least 0.5."""
    return [name for name, value in zip(labels, row.tolist(), strict=True) if value >= 0.5]


def steering_attributes(prior, generator_labels: list[str], targets: list, seeds: list[int], label_only: bool,
                        keep_others: bool = True, reach: float = 1.0, start=None):
    """Return the start and end attribute inputs, each (N, A_g), of faces to steer on a generator conditioned
    on attributes: real mixes (seeded like ``sample``'s) without the ``--to`` targets and with the
    ``--away-from`` ones, or ``start`` when given (an inverted photo's), and where they turn to
    (``turned_attributes``).

    A target the generator is not conditioned on stays as drawn; the label method, which has only the
    inputs to turn, refuses it."""
    from latentctl.latent.sampling import draw_attributes

    missing = [t.name for t in targets if t.name not in generator_labels]
    if missing and label_only:
        raise LatentctlError(f"the generator is not conditioned on {', '.join(missing)}: the label method can only "
                             "turn its attribute inputs",
                             hint=f"use --method gradient, or a model trained with --attribute {missing[0]}")
    turned = _turned_columns(generator_labels, targets)
    if start is None:
        start = draw_attributes(prior, seeds, {column: 1 - value for column, value in turned.items()})
    return start, turned_attributes(prior, generator_labels, targets, start, keep_others, reach)


def turned_attributes(prior, generator_labels: list[str], targets: list, start, keep_others: bool = True,
                      reach: float = 1.0):
    """Return where the attribute inputs ``start`` (N, A_g) turn to: each target's input goes to the other
    value, 1 (towards) or 0 (away), or ``reach`` times as far past the start (0 to R, 1 to 1 - R) to push
    an attribute the generator draws faintly beyond what training showed.

    ``keep_others`` holds every other input where it starts: the targets' axes alone, conditional
    manipulation in the input space. Without it the others follow the targets as they do in the data: each
    moves by how much more (or less) common it is among the prior's faces that have the target than among
    those that do not (towards Male, lipstick and makeup fade and beards come), ``reach`` times that, the
    input-space counterpart of an unconditional GAN's entangled direction."""
    if not 1 <= reach <= MAX_REACH:
        raise ValueError(f"reach must be in [1, {MAX_REACH:g}]")
    turned = _turned_columns(generator_labels, targets)
    end = start.clone()
    if not keep_others and turned:  # as far along the entangled move as the targets go, within [0, 1]
        end = (start + reach * correlated_shift(prior, turned)).clamp(0, 1)
    for column, value in turned.items():
        end[:, column] = start[:, column] + reach * (value - start[:, column])
    return end


def _turned_columns(generator_labels: list[str], targets: list) -> dict[int, int]:
    """The generator's columns of the targets it is conditioned on, with the value each turns to."""
    return {generator_labels.index(t.name): 1 if t.sign > 0 else 0 for t in targets if t.name in generator_labels}


def correlated_shift(prior, turned: dict[int, int]) -> torch.Tensor:
    """The move (A,) of every attribute that comes with turning the columns of ``turned`` to their values
    (1 or 0) in the real vectors of ``prior`` (N, A): the sum over those columns of the mean vector of the
    faces with that value minus the mean of those without it. A column the prior never shows either way
    adds nothing."""
    import torch

    rows = prior.cpu().float()
    shift = torch.zeros(rows.shape[1])
    for column, value in turned.items():
        having = rows[:, column] == value
        if having.any() and (~having).any():
            shift += rows[having].mean(0) - rows[~having].mean(0)
    return shift


def _rounded(normalization: dict[str, list[float]]) -> dict[str, list[float]]:
    return {key: [round(float(v), 4) for v in values] for key, values in normalization.items()}


def load_directions(generator_dir: Path, classifier_dir: Path, generator, classifier, names: list[str],
                    latent_dim: int, samples: int, refit: bool = False,
                    on_fit: Callable[[int], None] = lambda samples: None, fit: str | None = None):
    """Return the attribute directions of this generator read by this classifier, fitted by ``fit`` (one of
    ``latent.DIRECTION_FITS``; default ``DEFAULT_FIT``): cached, or fitted now (and cached next to the generator,
    or under ``$LATENTCTL_HOME/cache/directions`` if it is read-only)."""
    from latentctl.latent import DEFAULT_FIT
    from latentctl.latent import directions as directions_module

    fit = fit or DEFAULT_FIT
    directions_module.check_fit(fit)
    key = directions_module.cache_key(generator_dir, classifier_dir, samples, seed=0, fit=fit)
    places = directions_module.cache_paths(generator_dir, key, paths.home() / "cache" / "directions")
    found = None if refit else directions_module.load_cached(places, names, latent_dim)
    if found is not None:
        return found, False
    on_fit(samples)
    fitted = directions_module.fit_directions(generator, classifier, names, latent_dim, samples=samples, fit=fit)
    directions_module.save_cached(places, fitted)
    return fitted, True
