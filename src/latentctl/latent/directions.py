"""Attribute directions in latent space: one linear boundary per attribute, fitted to classifier readings of
generated faces (InterFaceGAN, Shen et al., 2020), and their cache.

Two fits: ``class-means``, the classes' linear discriminant over all faces (closed form), and ``interfacegan``,
the paper's recipe: a linear SVM on the faces read most confidently each way only. Either falls back to a ridge
regression of the logit where a side has too few faces. Conditional moves project out the kept attributes'
directions. docs/steering.md ("The direction method", "A better fitted direction") says why, with
measurements."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from latentctl import files, store
from latentctl.errors import LatentctlError, UsageError
from latentctl.latent import DEFAULT_FIT, DIRECTION_FITS

MIN_QUALITY = 0.75  # directions that agree less often with the classifier are not conditioned on
MIN_SHARE = 0.02  # nor are attributes (almost) never or always present in generated faces
MIN_COSINE = 0.05  # a kept direction this close to orthogonal to the move needs no projecting out
MIN_RETAINED = 0.5  # conditioning may shorten the move to no less than this share of its length
MIN_CLASS = 10  # faces needed on each side of a boundary for the class means; fewer: the logit regression
HELD_OUT = 0.2
RIDGE = 1.0
CONFIDENT = 0.10  # interfacegan: the share of fitting faces kept at each end of a reading (2% and 5% measured)
SVM_C = 1.0  # scikit-learn LinearSVC's default, which InterFaceGAN's and StyleGAN's SVMs use
CACHE_DIR = "directions"
# part of the cache key: directions fitted another way, or by an older version of a fit, are refitted
FIT_VERSIONS = {"class-means": "class-means-2", "interfacegan": f"interfacegan-1:{CONFIDENT}"}


@dataclass
class AttributeDirections:
    """Unit normals of the attribute boundaries in a generator's latent space, and how good each is."""

    names: list[str]
    normals: torch.Tensor  # (A, D), unit rows
    offsets: torch.Tensor  # (A,): the boundary is normals @ z + offsets = 0
    quality: torch.Tensor  # (A,) held-out balanced accuracy of the boundary against the classifier, all faces
    share: torch.Tensor  # (A,) share of generated faces the classifier reads as having the attribute
    samples: int
    fit: str = DEFAULT_FIT  # one of DIRECTION_FITS
    confident_quality: torch.Tensor | None = None  # (A,) the same on the held-out faces read confidently

    def usable(self) -> torch.Tensor:
        """Attributes (A,) whose direction is trustworthy enough to condition a move on."""
        return (self.quality >= MIN_QUALITY) & (self.share >= MIN_SHARE) & (self.share <= 1 - MIN_SHARE)

    def move(self, targets: list[tuple[int, int]], keep: bool) -> torch.Tensor:
        """Return the unit move (D,) for (column, sign) targets; with ``keep``, conditioned on the others."""
        direction = sum(sign * self.normals[column] for column, sign in targets)
        return self.condition(direction, [column for column, _ in targets], keep)

    def condition(self, direction: torch.Tensor, targets: list[int], keep: bool) -> torch.Tensor:
        """Return ``direction`` (D,), a move towards the ``targets`` columns, as a unit move; with ``keep``, the
        span of the kept attributes' normals (see :meth:`kept_for`) projected out of it first."""
        if keep:
            kept = self.kept_for(direction, targets)
            if kept:
                basis, _ = torch.linalg.qr(self.normals[kept].T)  # (D, K) orthonormal
                direction = direction - basis @ (basis.T @ direction)
        norm = direction.norm()
        if norm < 1e-6:
            names = ", ".join(self.names[column] for column in targets)
            raise LatentctlError(f"no latent direction moves {names} without moving the attributes to keep",
                                 hint="steer with --keep-others 0, or with --method gradient")
        return direction / norm

    def boundaries(self, columns: list[int]) -> dict[str, dict[str, float | str | None]]:
        """Per attribute of ``columns``: how its boundary was fitted and its held-out accuracy, on the faces read
        confidently and on all of them (balanced: the mean of the rates on each side)."""
        confident = self.confident_quality
        return {self.names[c]: {"fit": self.fit, "accuracy_all": round(float(self.quality[c]), 4),
                                "accuracy_confident": None if confident is None else round(float(confident[c]), 4)}
                for c in columns}

    def describe(self, column: int) -> str:
        """One line on the boundary of ``column``: its fit and held-out accuracies."""
        row = self.boundaries([column])[self.names[column]]
        confident = "" if row["accuracy_confident"] is None else f"{row['accuracy_confident']:.1%} read confidently, "
        return (f"{self.names[column]}'s boundary ({self.fit}, {self.samples:,} faces): held-out accuracy "
                f"{confident}{row['accuracy_all']:.1%} all")

    def kept_for(self, direction: torch.Tensor, targets: list[int]) -> list[int]:
        """The attributes to hold still when moving along ``direction``: usable ones that it would move.

        Only directions that lean on the move (|cosine| >= MIN_COSINE) need projecting out: the others do
        not change along it anyway. The most leaning come first, and one is skipped if holding it too would
        leave less than ``MIN_RETAINED`` of the move: in a GAN whose latent ties beards, ties and lipstick
        to Male, holding all of them leaves almost nothing of Male's direction (8% of faces reached it on
        the demo's 6-epoch GAN, against 83% with the rule). At most half the latent size are kept.
        """
        usable = self.usable()
        usable[targets] = False
        unit = direction / direction.norm().clamp_min(1e-12)
        cosines = (self.normals @ unit).abs()
        candidates = [int(i) for i in torch.argsort(cosines, descending=True)
                      if usable[i] and cosines[i] >= MIN_COSINE]
        kept: list[int] = []
        for candidate in candidates:
            if len(kept) == self.normals.shape[1] // 2:
                break
            basis, _ = torch.linalg.qr(self.normals[kept + [candidate]].T)  # (D, K) orthonormal
            if (unit - basis @ (basis.T @ unit)).norm() >= MIN_RETAINED:
                kept.append(candidate)
        return kept

    def to_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {"normals": self.normals.contiguous(), "offsets": self.offsets.contiguous(),
                   "quality": self.quality.contiguous(), "share": self.share.contiguous()}
        if self.confident_quality is not None:
            tensors["confident_quality"] = self.confident_quality.contiguous()
        return tensors

    def metadata(self) -> dict[str, str]:
        return {"names": json.dumps(self.names), "samples": str(self.samples), "fit": self.fit}


@torch.no_grad()
def fit_directions(generator: torch.nn.Module, classifier: torch.nn.Module, names: list[str], latent_dim: int,
                   samples: int = 10_000, seed: int = 0, batch_size: int = 256,
                   fit: str = DEFAULT_FIT) -> AttributeDirections:
    """Fit one boundary per attribute on ``samples`` faces drawn from seeded N(0, I) latents, the way ``fit``
    names (one of DIRECTION_FITS); a fifth of the faces is held out to measure each boundary."""
    check_fit(fit)
    if samples < 100:
        raise ValueError("fitting directions needs at least 100 samples")
    generator.eval()
    classifier.eval()
    device = next(generator.parameters()).device
    latents = torch.randn(samples, latent_dim, generator=torch.Generator().manual_seed(seed))  # (M, D)
    logits = torch.cat([classifier(generator(latents[i:i + batch_size].to(device))).float().cpu()
                        for i in range(0, samples, batch_size)])  # (M, A)
    fit_count = samples - int(samples * HELD_OUT)
    fit_latents, fit_logits = latents[:fit_count].double(), logits[:fit_count]
    normals, offsets = fit_boundaries(fit_latents, fit_logits, fit)
    low, high = confident_bounds(fit_logits)
    held_logits = logits[fit_count:]
    predicted = latents[fit_count:].double() @ normals.T + offsets > 0  # (M', A)
    quality = _balanced_agreement(predicted, held_logits > 0)
    confident_quality = _balanced_agreement(predicted, held_logits > 0, (held_logits <= low) | (held_logits >= high))
    return AttributeDirections(names=list(names), normals=normals.float().contiguous(),
                               offsets=offsets.float().contiguous(), quality=quality.float(),
                               share=(logits > 0).float().mean(0), samples=samples, fit=fit,
                               confident_quality=confident_quality.float())


def check_fit(fit: str) -> None:
    """Refuse a fit that is not one of DIRECTION_FITS (a UsageError of ``--fit``)."""
    if fit not in DIRECTION_FITS:
        raise UsageError(f"unknown fit {fit!r}: use {' or '.join(DIRECTION_FITS)}", "--fit")


def fit_boundaries(latents: torch.Tensor, logits: torch.Tensor, fit: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit normals (A, D) and offsets (A,) of one boundary per attribute between latents (M, D) read with
    ``logits`` (M, A) by the classifier: the class means over all faces (``class-means``) or a linear SVM on the
    confidently read ones, its offset then put where the boundary best agrees with all faces (``interfacegan``;
    the tails alone would put it halfway between them). A side with fewer than MIN_CLASS faces: the ridge."""
    weights, offsets = _ridge(latents, logits.double())  # (D, A), (A,)
    norms = weights.norm(dim=0).clamp_min(1e-12)
    normals, offsets = (weights / norms).T.clone(), offsets / norms  # (A, D), (A,)
    present = logits > 0  # (M, A)
    low, high = confident_bounds(logits)
    for column in range(present.shape[1]):
        inside = present[:, column]
        if fit == "class-means" and min(int(inside.sum()), int((~inside).sum())) >= MIN_CLASS:
            normals[column], offsets[column] = _class_means_boundary(latents[inside], latents[~inside])
            continue
        confident = (logits[:, column] <= low[column]) | (logits[:, column] >= high[column])
        sure = inside[confident]
        if fit == "interfacegan" and min(int(sure.sum()), int((~sure).sum())) >= MIN_CLASS:
            weight, _ = linear_svm(latents[confident], sure, balanced=True)
            normals[column] = weight / weight.norm().clamp_min(1e-12)
            offsets[column] = _best_offset(latents @ normals[column], inside)
    return normals, offsets


def confident_bounds(logits: torch.Tensor, share: float = CONFIDENT) -> tuple[torch.Tensor, torch.Tensor]:
    """Per attribute, the logits (A,) at or below which and at or above which a face of ``logits`` (M, A) is read
    confidently: the ``share`` of all faces read most surely each way, at most half of those read that way (the
    top and bottom few percent InterFaceGAN fits on, without calling an unsure face of a rare attribute sure)."""
    wanted = max(1, round(share * logits.shape[0]))
    low, high = [], []
    for column in logits.T:
        negatives = column[column <= 0].sort().values  # the surest first
        positives = column[column > 0].sort(descending=True).values
        low.append(negatives[min(wanted, len(negatives) // 2) - 1] if len(negatives) >= 2 else -torch.inf)
        high.append(positives[min(wanted, len(positives) // 2) - 1] if len(positives) >= 2 else torch.inf)
    return torch.tensor(low), torch.tensor(high)


def linear_svm(inputs: torch.Tensor, targets: torch.Tensor, c: float = SVM_C, steps: int = 200,
               balanced: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit a linear SVM (squared hinge loss plus half the squared norm of the weights, as LinearSVC's default)
    to inputs (N, D) and boolean or 0/1 targets (N,); return its weights (D,) and bias (), the plane being
    inputs @ weights + bias = 0. ``balanced`` weighs each class's faces so that both classes count alike."""
    x = torch.cat([inputs.double(), torch.ones(len(inputs), 1, dtype=torch.float64)], dim=1)  # the bias as a column
    y = targets.double() * 2 - 1
    counts = torch.stack([(y < 0).sum(), (y > 0).sum()]).double().clamp_min(1)
    sample_weight = (len(y) / (2 * counts))[(y > 0).long()] if balanced else torch.ones_like(y)
    weights = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weights], lr=1, max_iter=steps, tolerance_grad=1e-9, tolerance_change=1e-12,
                                  line_search_fn="strong_wolfe")

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        hinge = (1 - y * (x @ weights)).clamp(min=0).square()
        loss = 0.5 * weights[:-1].square().sum() + c * (sample_weight * hinge).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(objective)
    weights = weights.detach()
    return weights[:-1], weights[-1]


def _best_offset(projections: torch.Tensor, inside: torch.Tensor) -> torch.Tensor:
    """The offset b for which projections (M,) + b > 0 agrees best with ``inside`` (M,), balanced over both sides."""
    order = torch.argsort(projections)
    ranked, sorted_inside = projections[order], inside[order].double()
    # cutting after position i: faces 0..i read as outside, the rest as inside
    outside_right = torch.cumsum(1 - sorted_inside, 0) / (1 - sorted_inside).sum().clamp_min(1)
    inside_right = 1 - torch.cumsum(sorted_inside, 0) / sorted_inside.sum().clamp_min(1)
    best = int(torch.argmax(outside_right + inside_right))
    cut = (ranked[best] + ranked[min(best + 1, len(ranked) - 1)]) / 2
    return -cut


def _class_means_boundary(inside: torch.Tensor, outside: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The unit normal (D,) from the mean of ``outside`` latents to that of ``inside`` ones, and the offset of
    the hyperplane halfway between them."""
    inside_mean, outside_mean = inside.mean(0), outside.mean(0)
    normal = inside_mean - outside_mean
    normal = normal / normal.norm().clamp_min(1e-12)
    return normal, -normal @ (inside_mean + outside_mean) / 2


def _ridge(inputs: torch.Tensor, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least squares with an L2 penalty: weights (D, A) and offsets (A,) of outputs (M, A) ~ inputs (M, D)."""
    input_mean, output_mean = inputs.mean(0), outputs.mean(0)
    centred = inputs - input_mean
    gram = centred.T @ centred + RIDGE * torch.eye(inputs.shape[1], dtype=inputs.dtype)
    weights = torch.linalg.solve(gram, centred.T @ (outputs - output_mean))
    return weights, output_mean - input_mean @ weights


def _balanced_agreement(predicted: torch.Tensor, truth: torch.Tensor, counted: torch.Tensor | None = None
                        ) -> torch.Tensor:
    """Per column, the mean of the agreement rates on the classifier's positives and negatives (among the
    ``counted`` faces only, when given)."""
    counted = torch.ones_like(truth) if counted is None else counted
    positives, negatives = (truth & counted).sum(0), (~truth & counted).sum(0)
    on_positives = (predicted & truth & counted).sum(0) / positives.clamp_min(1)
    on_negatives = (~predicted & ~truth & counted).sum(0) / negatives.clamp_min(1)
    both = (positives > 0) & (negatives > 0)
    return torch.where(both, (on_positives + on_negatives) / 2, torch.zeros_like(on_positives))


# --------------------------------------------------------------------------------------------- the cache

def cache_key(generator_dir: Path, classifier_dir: Path, samples: int, seed: int, fit: str = DEFAULT_FIT) -> str:
    """A name for the directions of one generator read by one classifier and fitted by ``fit``: a hash of both
    weight files and the fit's version."""
    digest = hashlib.sha256()
    for directory in (generator_dir, classifier_dir):
        digest.update(files.file_sha256(Path(directory) / store.WEIGHTS_FILE).encode())
    digest.update(f"{samples}:{seed}:{FIT_VERSIONS[fit]}".encode())
    return digest.hexdigest()[:16]


def cache_paths(generator_dir: Path, key: str, fallback: Path) -> list[Path]:
    """Where the directions may be cached: next to the generator, else (read-only model) under ``fallback``."""
    return [Path(generator_dir) / CACHE_DIR / f"{key}.safetensors", Path(fallback) / f"{key}.safetensors"]


def load_cached(paths: list[Path], names: list[str], latent_dim: int) -> AttributeDirections | None:
    """Return cached directions from the first of ``paths`` that holds valid ones, else None."""
    for path in paths:
        if not path.is_file():
            continue
        try:
            tensors = files.load_tensors(path)
            metadata = _metadata(path)
            directions = AttributeDirections(names=metadata["names"], samples=int(metadata["samples"]),
                                             fit=metadata["fit"], confident_quality=tensors.get("confident_quality"),
                                             **{key: tensors[key] for key in ("normals", "offsets", "quality",
                                                                              "share")})
        except (LatentctlError, KeyError, ValueError, TypeError):
            continue  # a damaged cache is refitted, not trusted
        if directions.names == list(names) and tuple(directions.normals.shape) == (len(names), latent_dim):
            return directions
    return None


class Cacheable(Protocol):
    """What the cache holds: directions fitted here or discovered (latent.discover), as tensors and metadata."""

    def to_tensors(self) -> dict[str, torch.Tensor]: ...

    def metadata(self) -> dict[str, str]: ...


def save_cached(paths: list[Path], directions: Cacheable) -> Path | None:
    """Write the directions (fitted, or discovered by latent.discover) to the first writable of ``paths``;
    return where, or None if none was."""
    for path in paths:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            files.save_tensors(path, directions.to_tensors(), metadata=directions.metadata())
            return path
        except OSError:
            continue
    return None


def _metadata(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    return {"names": json.loads(metadata["names"]), "samples": metadata["samples"],
            "fit": metadata.get("fit", DEFAULT_FIT)}
