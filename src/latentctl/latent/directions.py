"""Attribute directions in latent space: one linear boundary per attribute, fitted to classifier readings of
generated faces (InterFaceGAN, Shen et al., 2020), and their cache.

The normal is the classes' linear discriminant (closed form; a ridge regression of the logit where a side has
too few faces), and conditional moves project out the kept attributes' directions. docs/steering.md ("The
direction method") says why, with measurements."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from latentctl import files, store
from latentctl.errors import LatentctlError

MIN_QUALITY = 0.75  # directions that agree less often with the classifier are not conditioned on
MIN_SHARE = 0.02  # nor are attributes (almost) never or always present in generated faces
MIN_COSINE = 0.05  # a kept direction this close to orthogonal to the move needs no projecting out
MIN_RETAINED = 0.5  # conditioning may shorten the move to no less than this share of its length
MIN_CLASS = 10  # faces needed on each side of a boundary for the class means; fewer: the logit regression
HELD_OUT = 0.2
RIDGE = 1.0
CACHE_DIR = "directions"
FIT_METHOD = "class-means-1"  # part of the cache key: directions fitted another way are refitted


@dataclass
class AttributeDirections:
    """Unit normals of the attribute boundaries in a generator's latent space, and how good each is."""

    names: list[str]
    normals: torch.Tensor  # (A, D), unit rows
    offsets: torch.Tensor  # (A,): the boundary is normals @ z + offsets = 0
    quality: torch.Tensor  # (A,) held-out balanced accuracy of the boundary against the classifier
    share: torch.Tensor  # (A,) share of generated faces the classifier reads as having the attribute
    samples: int

    def usable(self) -> torch.Tensor:
        """Attributes (A,) whose direction is trustworthy enough to condition a move on."""
        return (self.quality >= MIN_QUALITY) & (self.share >= MIN_SHARE) & (self.share <= 1 - MIN_SHARE)

    def move(self, targets: list[tuple[int, int]], keep: bool) -> torch.Tensor:
        """Return the unit move (D,) for (column, sign) targets; with ``keep``, conditioned on the others.

        The kept attributes (see :meth:`kept_for`) have their span projected out.
        """
        direction = sum(sign * self.normals[column] for column, sign in targets)
        if keep:
            kept = self.kept_for(direction, [column for column, _ in targets])
            if kept:
                basis, _ = torch.linalg.qr(self.normals[kept].T)  # (D, K) orthonormal
                direction = direction - basis @ (basis.T @ direction)
        norm = direction.norm()
        if norm < 1e-6:
            names = ", ".join(self.names[column] for column, _ in targets)
            raise LatentctlError(f"no latent direction moves {names} without moving the attributes to keep",
                                 hint="steer with --keep-others 0, or with --method gradient")
        return direction / norm

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
        return {"normals": self.normals.contiguous(), "offsets": self.offsets.contiguous(),
                "quality": self.quality.contiguous(), "share": self.share.contiguous()}

    def metadata(self) -> dict[str, str]:
        return {"names": json.dumps(self.names), "samples": str(self.samples)}


@torch.no_grad()
def fit_directions(generator: torch.nn.Module, classifier: torch.nn.Module, names: list[str], latent_dim: int,
                   samples: int = 10_000, seed: int = 0, batch_size: int = 256) -> AttributeDirections:
    """Fit one boundary per attribute on ``samples`` faces drawn from seeded N(0, I) latents."""
    if samples < 100:
        raise ValueError("fitting directions needs at least 100 samples")
    generator.eval()
    classifier.eval()
    device = next(generator.parameters()).device
    latents = torch.randn(samples, latent_dim, generator=torch.Generator().manual_seed(seed))  # (M, D)
    logits = torch.cat([classifier(generator(latents[i:i + batch_size].to(device))).float().cpu()
                        for i in range(0, samples, batch_size)])  # (M, A)
    fit_count = samples - int(samples * HELD_OUT)
    fit_latents = latents[:fit_count].double()
    weights, offsets = _ridge(fit_latents, logits[:fit_count].double())  # (D, A), (A,)
    norms = weights.norm(dim=0).clamp_min(1e-12)
    normals, offsets = (weights / norms).T, offsets / norms  # (A, D), (A,)
    present = logits[:fit_count] > 0  # (M, A)
    for column in range(present.shape[1]):
        inside = present[:, column]
        if min(int(inside.sum()), int((~inside).sum())) >= MIN_CLASS:
            normals[column], offsets[column] = _class_means_boundary(fit_latents[inside], fit_latents[~inside])
    predicted = latents[fit_count:].double() @ normals.T + offsets > 0  # (M', A)
    quality = _balanced_agreement(predicted, logits[fit_count:] > 0)
    return AttributeDirections(names=list(names), normals=normals.float().contiguous(),
                               offsets=offsets.float().contiguous(), quality=quality.float(),
                               share=(logits > 0).float().mean(0), samples=samples)


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


def _balanced_agreement(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per column, the mean of the agreement rates on the classifier's positives and negatives."""
    positives, negatives = truth.sum(0), (~truth).sum(0)
    on_positives = (predicted & truth).sum(0) / positives.clamp_min(1)
    on_negatives = (~predicted & ~truth).sum(0) / negatives.clamp_min(1)
    both = (positives > 0) & (negatives > 0)
    return torch.where(both, (on_positives + on_negatives) / 2, torch.zeros_like(on_positives))


# --------------------------------------------------------------------------------------------- the cache

def cache_key(generator_dir: Path, classifier_dir: Path, samples: int, seed: int) -> str:
    """A name for the directions of one generator read by one classifier: a hash of both weight files."""
    digest = hashlib.sha256()
    for directory in (generator_dir, classifier_dir):
        digest.update(files.file_sha256(Path(directory) / store.WEIGHTS_FILE).encode())
    digest.update(f"{samples}:{seed}:{FIT_METHOD}".encode())
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
    return {"names": json.loads(metadata["names"]), "samples": metadata["samples"]}
