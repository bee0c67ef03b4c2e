"""Measuring a conditional digit generator: does an independent judge read each image as the asked-for
label, and do the images of one label differ from each other?

The judge (``models.digits.DigitClassifier``) is trained on the dataset's own images only, never on generated
ones; its accuracy on held-out real images is reported beside the score, so a weak judge is visible."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from latentctl.eval.reading import predict_labels
from latentctl.images import to_unit_range
from latentctl.latent.sampling import generate, noise_for_seeds
from latentctl.models.digits import DigitClassifier


def fit_digit_classifier(images: torch.Tensor, labels: torch.Tensor, classes: int = 10, epochs: int = 3,
                         batch_size: int = 128, seed: int = 0, device: torch.device | str = "cpu"
                         ) -> DigitClassifier:
    """Train a DigitClassifier on uint8 images (N, C, 28, 28) with small random shifts as augmentation."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DigitClassifier(images.shape[1], classes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = epochs * -(-images.shape[0] // batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / steps)  # ends converged
    data, targets = to_unit_range(images).to(device), labels.to(device)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(data.shape[0], generator=generator).to(device)
        for start in range(0, data.shape[0], batch_size):
            index = order[start:start + batch_size]
            shift = torch.randint(-2, 3, (2,), generator=generator).tolist()
            batch = torch.roll(data[index], shifts=shift, dims=(2, 3))
            loss = F.cross_entropy(model(batch), targets[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


@dataclass
class ConditionalScore:
    accuracy: float  # share of generated images the judge reads as their requested label
    per_label: list[float]
    judge_accuracy: float | None  # the judge's accuracy on held-out real images

    def to_dict(self) -> dict:
        return {"accuracy": round(self.accuracy, 4), "per_label": [round(a, 4) for a in self.per_label],
                "judge_accuracy": None if self.judge_accuracy is None else round(self.judge_accuracy, 4)}


def conditional_accuracy(generator: nn.Module, judge: nn.Module, latent_dim: int, classes: int,
                         per_label: int = 100, seed: int = 10_000, truncation: float | None = None,
                         judge_test: tuple[torch.Tensor, torch.Tensor] | None = None) -> ConditionalScore:
    """Generate ``per_label`` images of every label and score them with ``judge``; ``judge_test``: held-out
    real uint8 images and their labels, to report the judge's own accuracy."""
    labels = torch.arange(classes).repeat_interleave(per_label)
    noise = noise_for_seeds(range(seed, seed + labels.shape[0]), latent_dim, truncation)
    predicted = predict_labels(judge, generate(generator, noise, labels))
    correct = (predicted == labels).float()
    judge_accuracy = None
    if judge_test is not None:
        test_images, test_labels = judge_test
        judge_accuracy = (predict_labels(judge, to_unit_range(test_images)) == test_labels).float().mean().item()
    return ConditionalScore(accuracy=correct.mean().item(),
                            per_label=correct.view(classes, per_label).mean(1).tolist(),
                            judge_accuracy=judge_accuracy)


def within_label_diversity(images: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean pixel-wise L1 distance between two different images of the same label, in [0, 2].

    Images are floats in [-1, 1]. A generator that ignores its noise and draws one image per label scores
    near 0; compare with the same measure on real images of the dataset.
    """
    distances, pairs = 0.0, 0
    for label in labels.unique():
        group = images[labels == label].flatten(1).float()
        count = group.shape[0]
        if count < 2:
            continue
        distances += torch.cdist(group, group, p=1).sum().item() / group.shape[1]
        pairs += count * (count - 1)
    if pairs == 0:
        raise ValueError("need at least two images of one label")
    return distances / pairs
