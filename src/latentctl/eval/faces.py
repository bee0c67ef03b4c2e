"""How good a face GAN is, read by an attribute classifier: the attribute mix and the variety of its faces.

A face generator should draw the data's population: as many men, smiles and glasses as the training set has,
as the same classifier reads both (so its own biases cancel), and faces that differ from each other. One
that collapsed to a few faces fails the second check; one that drops a minority fails the first."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from latentctl.eval.digits import within_label_diversity
from latentctl.eval.reading import predict_probabilities
from latentctl.images import to_unit_range
from latentctl.latent.sampling import generate, noise_for_seeds

KEY_ATTRIBUTES = ("Male", "Smiling", "Eyeglasses")


@dataclass
class FaceScore:
    """Attribute shares of generated and real faces as one classifier reads them, and pairwise variety."""

    generated: dict[str, float]  # attribute -> share of generated faces the classifier says have it
    real: dict[str, float]  # the same on real (held-out) faces
    labelled: dict[str, float]  # the share the real faces' labels give
    variety_generated: float  # mean pixel L1 between two generated faces, in [0, 2]
    variety_real: float
    faces: int

    def gap(self, names: tuple[str, ...] | list[str] = KEY_ATTRIBUTES) -> float:
        """The largest |generated share - real share| over ``names``."""
        return max(abs(self.generated[name] - self.real[name]) for name in names)

    def to_dict(self) -> dict:
        return {"faces": self.faces, "generated": self.generated, "real": self.real, "labelled": self.labelled,
                "key_attributes": list(KEY_ATTRIBUTES), "key_gap": round(self.gap(), 4),
                "variety": {"generated": round(self.variety_generated, 4), "real": round(self.variety_real, 4)}}


def score_faces(generator: torch.nn.Module, latent_dim: int, classifier: torch.nn.Module, names: list[str],
                real_images: torch.Tensor, real_attributes: torch.Tensor, attributes: list[str] | None = None,
                faces: int = 1000, seed: int = 20_000) -> FaceScore:
    """Score ``faces`` generated faces (seeds ``seed``...) against real uint8 images (N, 3, S, S) and their
    0/1 attributes (N, A), for ``attributes`` (default: all of ``names``)."""
    attributes = list(names) if attributes is None else attributes
    columns = [names.index(name) for name in attributes]
    fake = generate(generator, noise_for_seeds(range(seed, seed + faces), latent_dim))  # (faces, 3, S, S)
    real = to_unit_range(real_images[:faces])
    fake_read = (predict_probabilities(classifier, fake) > 0.5).float().mean(0)
    real_read = (predict_probabilities(classifier, real) > 0.5).float().mean(0)
    labelled = real_attributes[:faces].float().mean(0)

    def shares(values: torch.Tensor) -> dict[str, float]:
        return {name: round(values[column].item(), 4) for name, column in zip(attributes, columns, strict=True)}

    sample = min(500, faces, real.shape[0])
    return FaceScore(shares(fake_read), shares(real_read), shares(labelled),
                     within_label_diversity(fake[:sample], torch.zeros(sample)),
                     within_label_diversity(real[:sample], torch.zeros(sample)), faces)
