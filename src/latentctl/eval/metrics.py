"""An attribute classifier against true attributes: accuracy and balanced accuracy per attribute.

Balanced accuracy (the mean of the true-positive and true-negative rates) is the one a classifier cannot raise
by always answering "no" to a rare attribute. The counts behind both add up over parts of a set, so ranks that
each read a share of a split get the numbers of the whole split by summing them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from latentctl.errors import LatentctlError
from latentctl.eval.reading import READ_BATCH, as_tensor, predict_present


def evaluate_classifier(model: torch.nn.Module, images_uint8: torch.Tensor | np.ndarray,
                        attributes: torch.Tensor | np.ndarray, batch_size: int = READ_BATCH,
                        names: Sequence[str] | None = None) -> dict[str, Any]:
    """Return per-attribute and mean accuracy and balanced accuracy of ``model`` on uint8 images (N, C, S, S)
    with true attributes (N, A) in {0, 1}; an attribute is predicted present when its probability is > 0.5.

    The result: ``{"images": N, "accuracy": {name: a}, "balanced_accuracy": {name: b}, "positives":
    {name: count}, "mean_accuracy": ..., "mean_balanced_accuracy": ...}``, named by ``names`` (default:
    "0", "1", ...)."""
    require_images(len(images_uint8))
    predicted = predict_present(model, images_uint8, batch_size)
    return attribute_metrics(predicted, as_tensor(attributes).cpu().bool(), names)


def require_images(count: int) -> None:
    """Refuse to evaluate on no images (an empty validation split)."""
    if count == 0:
        raise LatentctlError("there are no images to evaluate the classifier on",
                             hint="the validation split is empty: check the dataset's partition file")


def attribute_metrics(predicted: torch.Tensor, truth: torch.Tensor,
                      names: Sequence[str] | None = None) -> dict[str, Any]:
    """Return accuracy and balanced accuracy per attribute of boolean predictions (N, A) against truth (N, A).

    When one of the two classes is absent (no image has the attribute, or every one has it) its rate is
    undefined, and the balanced accuracy is the rate of the class present, which then equals the accuracy.
    """
    return metrics_from_counts(attribute_counts(predicted, truth), names)


def attribute_counts(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Return int64 (4, A): per attribute, the true positives, true negatives, positives and negatives of
    boolean predictions (N, A) against truth (N, A). Counts of parts of a set add up to the whole set's."""
    correct = predicted == truth
    return torch.stack([(correct & truth).sum(0), (correct & ~truth).sum(0), truth.sum(0), (~truth).sum(0)])


def metrics_from_counts(counts: torch.Tensor, names: Sequence[str] | None = None) -> dict[str, Any]:
    """Return the metrics of :func:`attribute_metrics` from :func:`attribute_counts`'s (4, A) counts."""
    names = list(names) if names is not None else [str(i) for i in range(counts.shape[1])]
    true_positives, true_negatives, positives, negatives = counts.cpu().unbind(0)
    images = int((positives + negatives)[0]) if counts.shape[1] else 0
    true_positive_rate = true_positives / positives.clamp(min=1)
    true_negative_rate = true_negatives / negatives.clamp(min=1)
    balanced = torch.where(positives == 0, true_negative_rate,
                           torch.where(negatives == 0, true_positive_rate,
                                       (true_positive_rate + true_negative_rate) / 2))
    accuracy = (true_positives + true_negatives).float() / max(images, 1)
    return {"images": images,
            "accuracy": dict(zip(names, accuracy.tolist(), strict=True)),
            "balanced_accuracy": dict(zip(names, balanced.tolist(), strict=True)),
            "positives": dict(zip(names, positives.tolist(), strict=True)),
            "mean_accuracy": accuracy.mean().item(), "mean_balanced_accuracy": balanced.mean().item()}

