"""Linear separability of a face generator's latent space (Karras et al., StyleGAN, 2019): how well one
hyperplane per attribute splits the latents of faces that have it from those that don't.

For each attribute, the faces of ``samples`` latents are read by the attribute classifier; the least confident
half is dropped; a linear SVM (``latent.directions.linear_svm``) is fitted to tell the rest apart from their
latents; and the conditional entropy H(Y|X) of the classifier's answer Y given the SVM's side X measures, in
bits, what the hyperplane leaves unexplained. The score is 2 ** (sum over the attributes), as in StyleGAN's
metric: 1 when every attribute is linearly separable, higher when entangled. Lower is better; compare only on
the same classifier and attributes.
A generator conditioned on attributes is read in the space steering moves in: its noise and attribute inputs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class SeparabilityOptions:
    """What :func:`evaluate_separability` measures, with ``latentctl eval separability``'s defaults."""

    samples: int = 200_000  # StyleGAN's: 200,000 faces, the more confident 100,000 kept per attribute
    keep: float = 0.5
    attributes: tuple[str, ...] = ()  # () : every attribute of the classifier the generator's faces show both ways
    batch_size: int = 500
    seed: int = 0


def conditional_entropy(predicted: torch.Tensor, truth: torch.Tensor) -> float:
    """H(truth | predicted) in bits, of two 0/1 vectors: what knowing the side of the hyperplane leaves unknown."""
    total, entropy = len(truth), 0.0
    for side in (0, 1):
        on_side = truth[predicted == side]
        if len(on_side) == 0:
            continue
        share = on_side.double().mean().item()
        entropy += len(on_side) / total * sum(-p * math.log2(p) for p in (share, 1 - share) if p > 0)
    return entropy


@dataclass
class AttributeSeparability:
    name: str
    conditional_entropy: float  # bits
    accuracy: float  # the SVM's agreement with the classifier on the kept faces
    present: float  # share of the kept faces the classifier reads as having it

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "conditional_entropy": round(self.conditional_entropy, 4),
                "svm_accuracy": round(self.accuracy, 4), "present": round(self.present, 4)}


@dataclass
class SeparabilityReport:
    """What ``latentctl eval separability`` measured."""

    model: Path
    classifier: Path
    attributes: list[AttributeSeparability]
    skipped: list[str]  # attributes the kept faces show only one way: nothing to separate
    latent: str  # what the hyperplanes cut: "noise", or "noise and attribute inputs"
    seconds: float
    options: SeparabilityOptions = field(default_factory=SeparabilityOptions)

    @property
    def score(self) -> float:
        """2 ** (the attributes' conditional entropies summed): 1 is perfectly separable; lower is better."""
        return 2 ** sum(attribute.conditional_entropy for attribute in self.attributes)

    def to_json(self) -> dict[str, Any]:
        return {"model": str(self.model), "classifier": str(self.classifier), "score": round(self.score, 4),
                "samples": self.options.samples, "kept": round(self.options.samples * self.options.keep),
                "latent": self.latent, "seed": self.options.seed,
                "attributes": [attribute.to_json() for attribute in self.attributes], "skipped": self.skipped,
                "seconds": round(self.seconds, 1)}


def evaluate_separability(model: str | Path | None = None, classifier: str | Path | None = None,
                          options: SeparabilityOptions | None = None, *, device: str = "auto",
                          on_progress: Callable[[str, int, int], None] | None = None) -> SeparabilityReport:
    """The linear separability of ``model``'s latent space (default ``gan-celeba``) as ``classifier`` reads its
    faces (default ``classifier-celeba``). ``on_progress(stage, done, total)``."""
    import torch

    from latentctl.eval.reading import predict_probabilities
    from latentctl.latent.attributes import resolve_attributes
    from latentctl.latent.directions import linear_svm
    from latentctl.latent.sampling import draw_attributes, generate, noise_for_seeds
    from latentctl.latent.session import SteeringSession

    options = options or SeparabilityOptions()
    started = time.perf_counter()
    session = SteeringSession.load(model, classifier, device)
    names = resolve_attributes(options.attributes, session.names, "--attribute") if options.attributes \
        else list(session.names)
    latents, readings = [], []
    for start in range(options.seed, options.seed + options.samples, options.batch_size):
        seeds = list(range(start, min(start + options.batch_size, options.seed + options.samples)))
        noise = noise_for_seeds(seeds, session.config.latent_dim)  # (B, D)
        inputs = draw_attributes(session.generator.attribute_prior, seeds) if session.conditioned else None
        faces = generate(session.generator, noise, inputs)  # (B, 3, S, S) in [-1, 1]
        latents.append(noise if inputs is None else torch.cat([noise, inputs], dim=1))
        readings.append(predict_probabilities(session.classifier, faces))
        if on_progress is not None:
            on_progress("faces", start + len(seeds) - options.seed, options.samples)
    latent, probabilities = torch.cat(latents), torch.cat(readings)  # (N, D'), (N, A)
    kept_count = max(2, round(len(latent) * options.keep))
    scores, skipped = [], []
    for index, name in enumerate(names):
        column = probabilities[:, session.names.index(name)]
        kept = torch.argsort((column - 0.5).abs(), descending=True, stable=True)[:kept_count]  # the most confident
        truth = (column[kept] > 0.5).long()
        if truth.min() == truth.max():
            skipped.append(name)
            continue
        weights, bias = linear_svm(latent[kept], truth)
        predicted = (latent[kept].double() @ weights + bias > 0).long()
        scores.append(AttributeSeparability(name, conditional_entropy(predicted, truth),
                                            (predicted == truth).double().mean().item(), truth.double().mean().item()))
        if on_progress is not None:
            on_progress("hyperplanes", index + 1, len(names))
    return SeparabilityReport(session.model_dir, session.classifier_dir, scores, skipped,
                              "noise and attribute inputs" if session.conditioned else "noise",
                              time.perf_counter() - started, options)


def describe(report: SeparabilityReport) -> tuple[str, list[str], list[list[str]]]:
    """The report as a table (title, columns, rows), the least separable attributes first."""
    rows = [[a.name, f"{a.conditional_entropy:.3f}", f"{a.accuracy:.1%}", f"{a.present:.1%}"]
            for a in sorted(report.attributes, key=lambda a: -a.conditional_entropy)]
    return (f"linear separability of {report.model.name} ({report.latent}), read by {report.classifier.name}",
            ["attribute", "H(Y|X) bits", "SVM accuracy", "present"], rows)
