"""Directions in a generator's latent space found without labels, the maths and the set: SeFa (Shen & Zhou,
2021), the top eigenvectors of AᵀA for the first layer's weights A (``latent_matrix()`` of each generator), and
GANSpace (Härkönen et al., 2020), principal components of the first layer's activations (``first_features``)
mapped back to the latent by least squares; a discovered set, what a classifier read along it, and its cache
next to the model. ``latent.discover`` makes the commands of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from latentctl import files, paths, store
from latentctl.errors import LatentctlError, UsageError
from latentctl.latent import DISCOVERY_METHODS

TOP_ATTRIBUTES = 3  # attributes listed per component
KIND = "latentctl.discovered-directions"


# --------------------------------------------------------------------------------------------- the maths

def sefa(matrix: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the ``k`` unit eigenvectors (k, D) of AᵀA for A = ``matrix`` (F, D), largest eigenvalue first,
    and those eigenvalues (k,): the latent moves that change the first layer's output most (SeFa)."""
    matrix = matrix.double()
    values, vectors = torch.linalg.eigh(matrix.T @ matrix)  # ascending
    order = torch.argsort(values, descending=True)[:k]
    return fix_signs(vectors[:, order].T).float(), values[order].float()


def ganspace(features: Callable[[torch.Tensor], torch.Tensor], latent_dim: int, k: int, samples: int = 10_000,
             seed: int = 0, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``k`` unit latent directions (k, D) and the standard deviation (k,) of the samples' noise along
    each: the top principal components of ``features`` (noise (B, D) -> activations (B, F)) over ``samples``
    seeded N(0, I) noise vectors, each mapped back to the latent by regressing the noise on the samples'
    coordinates along the components (GANSpace's recipe for a "z" space)."""
    noise = torch.randn(samples, latent_dim, generator=torch.Generator().manual_seed(seed))  # (M, D)
    batches = [noise[i:i + batch_size] for i in range(0, samples, batch_size)]
    with torch.no_grad():
        width = features(batches[0][:1]).shape[1]
        dtype = torch.float64 if width <= 4096 else torch.float32  # an (F, F) scatter of 8192-wide layers: 256 MB
        reference = features(batches[0]).to(dtype).mean(0)  # subtracted first: the scatter loses no precision
        total, scatter = torch.zeros(width, dtype=dtype), torch.zeros(width, width, dtype=dtype)
        for batch in batches:
            centred = features(batch).to(dtype) - reference
            total += centred.sum(0)
            scatter += centred.T @ centred
        mean = total / samples
        values, vectors = torch.linalg.eigh(scatter / samples - mean[:, None] * mean[None])  # ascending
        components = vectors[:, torch.argsort(values, descending=True)[:k]]  # (F, k)
        coordinates = torch.cat([(features(batch).to(dtype) - reference - mean) @ components
                                 for batch in batches]).double()  # (M, k)
    coefficients = torch.linalg.lstsq(coordinates, noise.double()).solution  # (k, D): noise ~ coordinates @ it
    directions = fix_signs(coefficients / coefficients.norm(dim=1, keepdim=True).clamp_min(1e-12))
    return directions.float(), (noise.double() @ directions.T).std(0).float()


def fix_signs(vectors: torch.Tensor) -> torch.Tensor:
    """Rows of ``vectors`` (k, D) turned so that each one's largest entry is positive: an eigenvector's sign
    is arbitrary, and a discovered direction must name the same move every time."""
    largest = vectors.gather(1, vectors.abs().argmax(dim=1, keepdim=True))
    return vectors * torch.where(largest < 0, -1.0, 1.0).to(vectors.dtype)


# --------------------------------------------------------------------------------------------- a discovered set

@dataclass
class DiscoveredDirections:
    """Directions found in a generator's latent space, largest first, and what a classifier read along them."""

    method: str
    directions: torch.Tensor  # (k, D), unit rows
    sd: torch.Tensor  # (k,) spread of N(0, I) noise along each: the grid's unit
    attributes: list[str] = field(default_factory=list)  # the naming classifier's; [] when not named
    changes: torch.Tensor | None = None  # (k, A) mean change of each probability from -SPAN to +SPAN sd

    @property
    def k(self) -> int:
        return self.directions.shape[0]

    def top(self, index: int) -> list[tuple[str, float]]:
        """The attributes component ``index`` changes most, with their mean change; [] when not named."""
        if self.changes is None:
            return []
        row = self.changes[index]
        return [(self.attributes[i], float(row[i])) for i in torch.argsort(row.abs(), descending=True)[:TOP_ATTRIBUTES]]

    def name(self, index: int) -> str | None:
        """The attribute component ``index`` changes most, or None when not named."""
        top = self.top(index)
        return top[0][0] if top else None

    def strongest(self, column: int) -> tuple[int, int]:
        """The direction (index) whose walk changes attribute ``column`` most, and the way (+1 or -1) that makes
        it grow; the set must be named."""
        if self.changes is None:
            raise ValueError("the directions are not named: name_directions reads what they change")
        index = int(self.changes[:, column].abs().argmax())
        return index, 1 if float(self.changes[index, column]) >= 0 else -1

    def resolve(self, choice: str) -> tuple[int, int]:
        """The component (index) and the way to walk it (+1 or -1) that ``choice`` means: a number, or an
        attribute a component is named by (walked so that the attribute grows; the component that changes it
        most when several are). Anything else is a UsageError of ``--direction``."""
        if choice.strip().lstrip("-").isdigit():
            index = int(choice)
            if not 0 <= index < self.k:
                raise UsageError(f"{self.method} found {self.k} directions, numbered 0 to {self.k - 1}: there is no "
                                 f"{index}", "--direction")
            return index, 1
        from latentctl.latent.attributes import normalise

        named = [i for i in range(self.k) if self.name(i) and normalise(self.name(i)) == normalise(choice)]
        if not named:
            names = sorted({n for n in map(self.name, range(self.k)) if n})
            known = (f"its directions are named {', '.join(names)}" if names else
                     "its directions have no names: discover them with --classifier, or give a number")
            raise UsageError(f"no {self.method} direction is named {choice!r}; {known}", "--direction")
        column = self.attributes.index(self.name(named[0]))
        index = max(named, key=lambda i: abs(float(self.changes[i, column])))
        return index, 1 if float(self.changes[index, column]) >= 0 else -1

    def to_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {"directions": self.directions.contiguous(), "sd": self.sd.contiguous()}
        return tensors if self.changes is None else {**tensors, "changes": self.changes.contiguous()}

    def metadata(self) -> dict[str, str]:
        return {"format": KIND, "method": self.method, "attributes": json.dumps(self.attributes)}


def cache_places(model_dir: Path, method: str) -> list[Path]:
    """Where a model's ``method`` set is cached: its ``directions/`` folder, else (read-only model) the home's
    cache; the name holds a hash of the weights, so a retrained model is not walked with its old set."""
    from latentctl.latent.directions import cache_paths

    key = f"{method}-{files.file_sha256(Path(model_dir) / store.WEIGHTS_FILE)[:16]}"
    return cache_paths(model_dir, key, paths.home() / "cache" / "directions")


def save_discovered(model_dir: Path, found: DiscoveredDirections) -> Path | None:
    """Cache ``found`` for ``model_dir`` (replacing the set of the same method); return where, or None."""
    from latentctl.latent.directions import save_cached

    return save_cached(cache_places(model_dir, found.method), found)


def load_discovered(model_dir: Path, method: str | None = None) -> DiscoveredDirections:
    """The set of ``method`` discovered for ``model_dir`` (without one: the latest of any method); none is a
    LatentctlError that says how to discover one."""
    found = [place for name in ([method] if method else DISCOVERY_METHODS) for place in cache_places(model_dir, name)
             if place.is_file()]
    for place in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            tensors = files.load_tensors(place)
            metadata = _metadata(place)
            return DiscoveredDirections(metadata["method"], tensors["directions"], tensors["sd"],
                                        json.loads(metadata["attributes"]), tensors.get("changes"))
        except (LatentctlError, KeyError, ValueError, TypeError):
            continue  # a damaged cache is rediscovered, not trusted
    which = f"{method} directions" if method else "directions discovered"
    raise LatentctlError(f"no {which} for {model_dir}",
                         hint=f"run 'latentctl directions discover --model {model_dir}"
                              + (f" --method {method}'" if method else "'") + " first")


def _metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata() or {}


def find_directions(generator: torch.nn.Module, config: store.ModelConfig, method: str, k: int,
                    samples: int = 10_000, seed: int = 0) -> DiscoveredDirections:
    """The unnamed set of ``k`` directions ``method`` finds in ``generator``: SeFa from its ``latent_matrix()``,
    GANSpace from its ``first_features`` over ``samples`` noise vectors (a conditioned generator's label held at
    the mean of its embeddings, so that only the noise moves the activations)."""
    if method not in DISCOVERY_METHODS:
        raise UsageError(f"unknown method {method!r}: use {' or '.join(DISCOVERY_METHODS)}", "--method")
    if method == "sefa":
        directions, _ = sefa(generator.latent_matrix().cpu(), k)
        return DiscoveredDirections("sefa", directions, torch.ones(k))  # N(0, I) has sd 1 along any unit vector
    device = next(generator.parameters()).device
    embedding = mean_embedding(generator, config)

    def features(noise: torch.Tensor) -> torch.Tensor:
        noise = noise.to(device)
        label = None if embedding is None else embedding.expand(noise.shape[0], -1)
        return generator.first_features(noise, label).float().cpu()

    generator.eval()
    directions, sd = ganspace(features, config.latent_dim, k, samples, seed)
    return DiscoveredDirections("ganspace", directions, sd)


def mean_embedding(generator: torch.nn.Module, config: store.ModelConfig) -> torch.Tensor | None:
    """A conditioned generator's label embedding (1, E) averaged over its labels (digits) or over the real
    attribute vectors it keeps; None for an unconditional one."""
    if config.conditioned_on_attributes:
        labels = generator.attribute_prior.float()
    elif config.labels:
        labels = torch.arange(len(config.labels), device=next(generator.parameters()).device)
    else:
        return None
    with torch.no_grad():
        return generator.label_embedding(labels).float().mean(0, keepdim=True)


@torch.no_grad()
def name_directions(found: DiscoveredDirections, generator: torch.nn.Module, config: store.ModelConfig,
                    classifier: torch.nn.Module, attributes: list[str], seeds: Sequence[int],
                    span: float) -> DiscoveredDirections:
    """``found`` with each direction's mean change in every attribute's probability, as ``classifier`` reads
    the faces of ``seeds`` from -``span`` to +``span`` sd along it."""
    from latentctl.eval.reading import predict_probabilities
    from latentctl.latent.sampling import generate, noise_for_seeds

    ends = walks(noise_for_seeds(seeds, config.latent_dim), found, torch.tensor([-span, span]))  # (k, 2, n, D)
    conditions = repeat_conditions(face_conditions(generator, config, seeds), found.k * 2, interleave=False)
    readings = predict_probabilities(classifier, generate(generator, ends.flatten(0, 2), conditions))
    readings = readings.unflatten(0, (found.k, 2, len(seeds)))  # (k, 2, n, A)
    changes = (readings[:, 1] - readings[:, 0]).mean(1)  # (k, A)
    return DiscoveredDirections(found.method, found.directions, found.sd, list(attributes), changes)


def face_conditions(generator: torch.nn.Module, config: store.ModelConfig, seeds: Sequence[int]) -> torch.Tensor | None:
    """What the generator is conditioned on for the faces of ``seeds``: nothing (None), digit labels (seed mod
    the number of labels), or attribute vectors drawn from real faces' as ``sample`` draws them."""
    from latentctl.latent.sampling import draw_attributes

    if config.conditioned_on_attributes:
        return draw_attributes(generator.attribute_prior, seeds)
    if config.labels:
        return torch.tensor([seed % len(config.labels) for seed in seeds])
    return None


def walks(base: torch.Tensor, found: DiscoveredDirections, offsets: torch.Tensor) -> torch.Tensor:
    """Latents (k, T, N, D): each of the N ``base`` latents moved by each of ``offsets`` (T,) sd along each
    direction."""
    steps = offsets[None, :, None, None] * found.sd[:, None, None, None]  # (k, T, 1, 1)
    return base[None, None] + steps * found.directions[:, None, None, :]


def repeat_conditions(conditions: torch.Tensor | None, times: int, interleave: bool = True) -> torch.Tensor | None:
    """Conditions for ``times`` copies of each face (interleave: each face's copies together) or of the set."""
    if conditions is None:
        return None
    if interleave:
        return conditions.repeat_interleave(times, 0)
    return conditions.repeat(times, *[1] * (conditions.ndim - 1))
