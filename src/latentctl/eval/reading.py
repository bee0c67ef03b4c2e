"""A trained network reading images: the one batched reader behind every probability, yes/no and label that
training, steering and evaluation take, and image files prepared as a classifier's training images were (what
``latentctl classify`` reads)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentctl.errors import LatentctlError
from latentctl.images import to_unit_range

READ_BATCH = 256  # images per forward pass; each caller keeps the batch its numbers were measured with


def as_tensor(array: torch.Tensor | np.ndarray) -> torch.Tensor:
    """A tensor of ``array``, copying a numpy array (which may be a read-only memory map)."""
    return array if isinstance(array, torch.Tensor) else torch.from_numpy(np.array(array))


def read(model: torch.nn.Module, images: torch.Tensor | np.ndarray,
         answer: Callable[[torch.Tensor], torch.Tensor] = torch.sigmoid, batch_size: int = READ_BATCH,
         uint8: bool = False) -> torch.Tensor:
    """Return ``answer(logits)`` for images (N, C, H, W) in [-1, 1] (uint8 with ``uint8``, normalised on the
    model's device), concatenated on the CPU; an empty input gives an empty answer of the right shape.

    Runs in eval mode without gradients, ``batch_size`` images at a time on the model's device; the model's
    mode is restored. For gradients (steering), call the model itself."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    parts = []
    try:
        with torch.inference_mode():
            for start in range(0, max(len(images), 1), batch_size):  # an empty input still passes once
                batch = as_tensor(images[start:start + batch_size]).to(device)
                parts.append(answer(model(to_unit_range(batch) if uint8 else batch)).cpu())
    finally:
        model.train(was_training)
    return torch.cat(parts)


def predict_probabilities(model: torch.nn.Module, images: torch.Tensor, batch_size: int = READ_BATCH
                          ) -> torch.Tensor:
    """Return the attribute probabilities (N, A) on the CPU of images (N, C, S, S) in [-1, 1]."""
    return read(model, images, torch.sigmoid, batch_size)


def predict_present(model: torch.nn.Module, images_uint8: torch.Tensor | np.ndarray,
                    batch_size: int = READ_BATCH) -> torch.Tensor:
    """Return which attributes ``model`` reads as present (probability > 0.5, i.e. logit > 0) in uint8 images
    (N, C, S, S): bool (N, A) on the CPU."""
    return read(model, images_uint8, lambda logits: logits > 0, batch_size, uint8=True)


def predict_labels(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Return the predicted classes (N,) of images (N, C, H, W) in [-1, 1]: the digit judge's reading."""
    return read(model, images, lambda logits: logits.argmax(1), batch_size)


# ----------------------------------------------------------------------------------------- image files

def classifier_preprocessing(config: Any) -> tuple[int, int, str]:
    """Return the (size, crop, resize) a model's images must be prepared with, as its config records: an
    imported model's ``training.preprocessing``, else the crop of the ``training.dataset`` it was trained on
    (a classifier or a face GAN); CelebA's default crop when neither says.

    ``resize`` is "lanczos" (crop, then resize: latentctl's cache) or "bilinear" (torchvision's Resize then
    CenterCrop: the seed notebooks' classifiers, see ``latentctl models import``)."""
    from latentctl.data.prepare import DEFAULT_CROP

    recorded = config.training.get("preprocessing") or config.training.get("dataset") or {}
    recorded = recorded if isinstance(recorded, dict) else {}
    resize = "bilinear" if recorded.get("resize") == "bilinear" else "lanczos"
    return config.image_size, int(recorded.get("crop", DEFAULT_CROP)), resize


def read_face_images(paths: Sequence[Path], size: int, crop: int, resize: str = "lanczos") -> torch.Tensor:
    """Return image files as the training data was prepared: uint8 (N, 3, size, size), center-cropped to
    ``crop`` (in CelebA's 178-pixel-wide frame) and resized; with ``resize="bilinear"``, as torchvision's
    Resize + CenterCrop do it. Any mode (grayscale, palette, RGBA: its colours without the alpha) becomes RGB. A
    missing or unreadable file, or one of more than PIL's ``Image.MAX_IMAGE_PIXELS`` (a decompression bomb), is
    a LatentctlError."""
    from PIL import Image, UnidentifiedImageError

    from latentctl.data.prepare import crop_and_resize, resize_then_crop

    pictures = []
    for path in paths:
        if not Path(path).is_file():
            raise LatentctlError(f"{path} does not exist" if not Path(path).exists() else f"{path} is not a file",
                                 hint="give paths of image files (JPEG, PNG, ...)")
        try:
            with Image.open(path) as image:
                if image.width * image.height > (Image.MAX_IMAGE_PIXELS or float("inf")):
                    raise Image.DecompressionBombError(f"{image.width}x{image.height} pixels")
                picture = resize_then_crop(image, size) if resize == "bilinear" else crop_and_resize(image, size, crop)
        except Image.DecompressionBombError as error:
            raise LatentctlError(f"{path} is too large to read ({str(error).split('.')[0]}; the limit is "
                                 f"{Image.MAX_IMAGE_PIXELS:,} pixels)",
                                 hint="shrink the photo first; a small file of that many pixels may be a "
                                      "decompression bomb") from None
        except (UnidentifiedImageError, OSError, ValueError) as error:
            raise LatentctlError(f"cannot read {path} as an image ({error})",
                                 hint="give paths of image files (JPEG, PNG, ...)") from None
        pictures.append(torch.from_numpy(np.asarray(picture).transpose(2, 0, 1).copy()))
    return torch.stack(pictures) if pictures else torch.empty(0, 3, size, size, dtype=torch.uint8)


def classify_images(model: torch.nn.Module, config: Any, paths: Sequence[Path]) -> torch.Tensor:
    """Return the attribute probabilities (N, A) of image files, preprocessed as ``config`` records."""
    size, crop, resize = classifier_preprocessing(config)
    return predict_probabilities(model, to_unit_range(read_face_images(paths, size, crop, resize)))


@dataclass
class Classification:
    """What ``classify`` read: each image's probability of each of the classifier's attributes."""

    classifier_dir: Path
    paths: list[Path]
    names: list[str]  # the classifier's attributes, in column order
    probabilities: torch.Tensor  # (N, A) on the CPU
    top: int | None = None  # each image's K most likely attributes are listed too

    def images(self) -> list[dict[str, Any]]:
        """Per image: its path, {attribute: probability} (rounded to 4 places) and, with ``top``, the most likely."""
        rows = []
        for path, row in zip(self.paths, self.probabilities.tolist(), strict=True):
            image: dict[str, Any] = {"path": str(path),
                                     "probabilities": {name: round(p, 4) for name, p in zip(self.names, row,
                                                                                            strict=True)}}
            if self.top is not None:
                image["top"] = sorted(self.names, key=lambda name: -image["probabilities"][name])[:self.top]
            rows.append(image)
        return rows

    def shown(self) -> list[str]:
        """The attributes among some image's ``top`` (all of them without ``top``), in column order."""
        tops = None if self.top is None else {name for image in self.images() for name in image["top"]}
        return [name for name in self.names if tops is None or name in tops]

    def to_json(self) -> dict[str, Any]:
        """The ``classify --json`` document, without its "command" key."""
        return {"classifier": str(self.classifier_dir), "images": self.images()}


def classify(images: Sequence[str | Path], *, classifier: str | Path | None = None, device: str = "auto",
             top: int | None = None) -> Classification:
    """Read face images of any size with an attribute classifier (a folder, a registered name or a Hub repo;
    default ``classifier-celeba``), each prepared as the classifier's training images were."""
    from latentctl import lookup
    from latentctl.device import resolve_device
    from latentctl.store import load_model

    classifier_dir = lookup.resolve_model(classifier, "classifier-celeba")
    model, config = load_model(classifier_dir, "classifier", resolve_device(device), option="--classifier")
    paths = [Path(path) for path in images]
    return Classification(classifier_dir, paths, list(config.labels), classify_images(model, config, paths), top)
