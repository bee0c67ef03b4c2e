"""Real photos into a face GAN's latent space: ``invert`` finds, for each photo, the latent (and, for a model
trained with ``--condition attributes``, the attribute inputs) whose face looks most like it.

The photo is prepared as the model's training images were (the same function ``classify`` uses); the guess
is the best of many random latents, then Adam refines it on a pixel loss, a feature loss (the attribute
classifier's intermediate activations, when there is one) and a prior that keeps the latent where the
generator was trained. Why these choices, and what they measure: docs/editing.md.

Importing this module loads no torch: the CLI reads ``InvertOptions``' defaults while building ``--help``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latentctl import console, lookup
from latentctl.errors import LatentctlError, UsageError

if TYPE_CHECKING:
    import torch

    from latentctl.latent.session import SteeringSession
    from latentctl.store import ModelConfig

PIXEL_LOSSES = ("mse", "l1")
START_BATCH = 64  # random starts drawn per generator pass


@dataclass(frozen=True)
class InvertOptions:
    """Every setting of ``invert``, with its defaults (the CLI's flags read them), chosen on 64x64 faces."""

    steps: int = 150  # Adam steps from the best random start
    starts: int = 256  # random latents tried first; the closest (pixel loss) is the start
    learning_rate: float = 0.05
    pixel_loss: str = "mse"  # mse or l1, on pixels in [-1, 1]
    feature_weight: float = 0.1  # the classifier's intermediate activations (each layer's error over its power)
    prior_weight: float = 0.05  # (|z|^2 / D - 1)^2: Gaussian latents of the generator's training lie near a shell
    batch_size: int = 16  # photos optimised at once
    seed: int = 0  # the random starts are the latents of seeds seed, ..., seed + starts - 1

    def check(self) -> None:
        """Refuse settings that cannot work, as UsageErrors naming the CLI's flag."""
        if self.pixel_loss not in PIXEL_LOSSES:
            raise UsageError(f"{self.pixel_loss!r} is not a pixel loss: use {' or '.join(PIXEL_LOSSES)}", "--loss")
        for value, flag in ((self.steps, "--steps"), (self.starts, "--starts"), (self.batch_size, "--batch-size")):
            if value < (0 if flag == "--steps" else 1):
                raise UsageError(f"{value} is too small", flag)


@dataclass
class Inversion:
    """What ``invert_images`` found, per photo: the latent, the attribute inputs, the face and the losses."""

    latents: torch.Tensor  # (N, D)
    attributes: torch.Tensor | None  # (N, A_g) in [0, 1], for a generator conditioned on attributes
    reconstructions: torch.Tensor  # (N, C, H, W) in [-1, 1]
    start_seeds: list[int | None]  # the seed of each photo's best random start; None: the encoder's guess
    start_loss: torch.Tensor  # (N,) the pixel loss of the start
    loss: torch.Tensor  # (N,) the pixel loss at the end


def invert_images(generator: torch.nn.Module, targets: torch.Tensor, options: InvertOptions | None = None,
                  classifier: torch.nn.Module | None = None, attributes: torch.Tensor | None = None,
                  encoder: torch.nn.Module | None = None) -> Inversion:
    """Return the latents whose images best match ``targets`` (N, C, H, W) in [-1, 1]; pure math, no I/O.

    The start is the best of ``options.starts`` random latents, or with an ``encoder`` (``models.encoder``,
    trained on this generator) its guess, which costs one pass instead of ``starts`` generator images.

    ``attributes`` (N, A_g) in [0, 1] are the starting attribute inputs of a generator conditioned on them,
    optimised along with the latents (as sigmoids of free logits, so they stay in [0, 1]). With a
    ``classifier``, its activations are matched too. Both networks stay frozen, in eval mode."""
    import torch

    from latentctl.latent.sampling import noise_for_seeds

    options = options or InvertOptions()
    generator.eval()
    if classifier is not None:
        classifier.eval()
    device = next(generator.parameters()).device
    latent_dim = generator.config.latent_dim
    seeds = [] if encoder is not None else list(range(options.seed, options.seed + options.starts))
    candidates = noise_for_seeds(seeds, latent_dim).to(device) if seeds else None  # (S, D)
    parts = []
    if encoder is not None:
        encoder.eval()
    with _frozen(generator, classifier, encoder):
        for begin in range(0, targets.shape[0], options.batch_size):
            batch = slice(begin, begin + options.batch_size)
            chunk_attributes = None if attributes is None else attributes[batch].to(device)
            parts.append(_invert_batch(generator, targets[batch].to(device), candidates, options, classifier,
                                       chunk_attributes, encoder))

    def joined(key: str) -> torch.Tensor:
        return torch.cat([part[key] for part in parts]).cpu()

    return Inversion(latents=joined("latents"), attributes=None if attributes is None else joined("attributes"),
                     reconstructions=joined("images"),
                     start_seeds=[seeds[i] if i >= 0 else None for i in joined("start").tolist()],
                     start_loss=joined("start_loss"), loss=joined("loss"))


@contextmanager
def _frozen(*modules: torch.nn.Module | None) -> Iterator[None]:
    """No weight gradients inside (half of every backward pass otherwise); each weight's flag is restored."""
    weights = [weight for module in modules if module is not None for weight in module.parameters()]
    flags = [weight.requires_grad for weight in weights]
    try:
        for weight in weights:
            weight.requires_grad_(False)
        yield
    finally:
        for weight, flag in zip(weights, flags, strict=True):
            weight.requires_grad_(flag)


def _invert_batch(generator: torch.nn.Module, targets: torch.Tensor, candidates: torch.Tensor | None,
                  options: InvertOptions, classifier: torch.nn.Module | None, attributes: torch.Tensor | None,
                  encoder: torch.nn.Module | None) -> dict[str, torch.Tensor]:
    import torch

    count = targets.shape[0]
    with torch.no_grad():
        if encoder is not None:  # the encoder's guess; -1: no random start
            start = encoder(targets)  # (N, D)
            start_loss = _pixel_loss(_draw(generator, start, attributes), targets, options.pixel_loss)
            best = torch.full((count,), -1, dtype=torch.long, device=targets.device)
        else:  # the best random start of each photo
            errors = torch.cat([_start_errors(generator, targets, candidates, attributes, options, i)
                                for i in range(0, candidates.shape[0], START_BATCH)], dim=1)  # (N, S)
            start_loss, best = errors.min(dim=1)  # (N,)
            start = candidates[best]
        target_features = None if classifier is None else [f.detach() for f in activations(classifier, targets)]
    latent_dim = start.shape[1]
    latent = start.clone().requires_grad_(True)  # (N, D)
    logits = None
    params = [latent]
    if attributes is not None:
        logits = torch.logit(attributes.clamp(0.02, 0.98)).requires_grad_(True)
        params.append(logits)
    optimiser = torch.optim.Adam(params, lr=options.learning_rate)
    best_loss = torch.full((count,), math.inf, device=targets.device)
    best_latent, best_logits = latent.detach().clone(), None if logits is None else logits.detach().clone()
    for step in range(options.steps + 1):  # the last pass only scores the last step
        images = _draw(generator, latent, None if logits is None else torch.sigmoid(logits))
        loss = _pixel_loss(images, targets, options.pixel_loss)  # (N,)
        with torch.no_grad():  # keep each photo's best latent: Adam's last step is not always its best
            better = loss < best_loss
            best_loss = torch.where(better, loss, best_loss)
            best_latent[better] = latent[better]
            if logits is not None:
                best_logits[better] = logits[better]
        if step == options.steps:
            break
        total = loss
        if target_features is not None:
            total = total + options.feature_weight * feature_distance(classifier, images, target_features)
        total = total + options.prior_weight * (latent.square().sum(1) / latent_dim - 1).square()
        optimiser.zero_grad(set_to_none=True)
        total.sum().backward()
        optimiser.step()
    with torch.no_grad():
        found = None if best_logits is None else torch.sigmoid(best_logits)
        images = _draw(generator, best_latent, found)
    return {"latents": best_latent, "images": images, "start": best, "start_loss": start_loss,
            "loss": _pixel_loss(images, targets, options.pixel_loss),
            **({} if found is None else {"attributes": found})}


def _start_errors(generator: torch.nn.Module, targets: torch.Tensor, candidates: torch.Tensor,
                  attributes: torch.Tensor | None, options: InvertOptions, begin: int) -> torch.Tensor:
    """The pixel loss (N, S') of each photo against candidates[begin:begin + START_BATCH]."""
    import torch

    chunk = candidates[begin:begin + START_BATCH]
    if attributes is None:
        images = _draw(generator, chunk, None)  # (S', C, H, W), compared with every photo
        return torch.stack([_pixel_loss(images, target[None].expand_as(images), options.pixel_loss)
                            for target in targets])
    rows = []
    for target, row in zip(targets, attributes, strict=True):  # each photo's own attribute inputs
        images = _draw(generator, chunk, row[None].expand(chunk.shape[0], -1))
        rows.append(_pixel_loss(images, target[None].expand_as(images), options.pixel_loss))
    return torch.stack(rows)


def _draw(generator: torch.nn.Module, latent: torch.Tensor, attributes: torch.Tensor | None) -> torch.Tensor:
    return generator(latent) if attributes is None else generator(latent, attributes)


def _pixel_loss(images: torch.Tensor, targets: torch.Tensor, kind: str) -> torch.Tensor:
    difference = images - targets
    return (difference.abs() if kind == "l1" else difference.square()).flatten(1).mean(1)


def feature_distance(classifier: torch.nn.Module, images: torch.Tensor, target_features: list[torch.Tensor]
                     ) -> torch.Tensor:
    """The feature loss (N,): the mean over the classifier's layers of each layer's squared error between
    ``images``' activations and ``target_features`` (``activations`` of the targets), over the targets' power."""
    return sum(
        (mine - theirs).square().flatten(1).mean(1) / theirs.square().flatten(1).mean(1).clamp_min(1e-6)
        for mine, theirs in zip(activations(classifier, images), target_features, strict=True)
    ) / len(target_features)


def activations(classifier: torch.nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """The outputs of every ReLU of ``classifier`` on ``images``: its features at each depth."""
    from torch import nn

    found: list[torch.Tensor] = []
    hooks = [module.register_forward_hook(lambda _m, _i, output: found.append(output))
             for module in classifier.modules() if isinstance(module, nn.ReLU | nn.LeakyReLU)]
    try:
        classifier(images)
    finally:
        for hook in hooks:
            hook.remove()
    return [features.clone() for features in found]  # an in-place ReLU's output may be overwritten later


# ------------------------------------------------------------------------------------------- photo files

def photo_tensors(paths: Sequence[Path], config: ModelConfig) -> torch.Tensor:
    """Return photo files as the generator's training images were prepared: (N, C, S, S) in [-1, 1], any
    size of photo, grayscale, palette or RGBA converted to the model's channels."""
    from latentctl.eval.reading import classifier_preprocessing, read_face_images
    from latentctl.images import to_unit_range

    size, crop, resize = classifier_preprocessing(config)
    pictures = to_unit_range(read_face_images(paths, size, crop, resize))  # (N, 3, S, S)
    if config.channels == 1:  # ITU-R 601 luma, as PIL's convert("L")
        weights = pictures.new_tensor([0.299, 0.587, 0.114])[None, :, None, None]
        pictures = (pictures * weights).sum(1, keepdim=True)
    return pictures


def check_face_model(config: ModelConfig, model_dir: Path) -> None:
    """Refuse a model that does not draw faces from noise alone (a digit cGAN): its latents cannot hold a photo."""
    if config.kind != "gan" or (config.labels and not config.conditioned_on_attributes):
        raise LatentctlError(f"{model_dir} draws digits by label ({config.kind}): invert and edit take face photos "
                             "and a face GAN", hint="pass --model with a face GAN made by 'latentctl train gan'")


# ----------------------------------------------------------------------------------------- the command

@dataclass
class InversionReport:
    """What ``invert`` made: the latents file, a reconstruction per photo, and how close each came."""

    model_dir: Path
    classifier_dir: Path | None  # None: no classifier, no feature loss and no readings
    options: InvertOptions
    photos: list[Path]
    targets: torch.Tensor  # (N, C, S, S) in [-1, 1]: the photos, prepared
    inversion: Inversion
    seconds: float
    names: list[str] = field(default_factory=list)  # the classifier's attributes
    readings: tuple[torch.Tensor, torch.Tensor] | None = None  # (photo, reconstruction) probabilities, (N, A) each
    out: Path | None = None  # the latents file
    reconstruction_files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    model_labels: list[str] = field(default_factory=list)  # a conditioned generator's attribute inputs
    encoder_dir: Path | None = None  # the encoder whose guess was the start; None: random starts

    @property
    def latents(self) -> torch.Tensor:
        return self.inversion.latents

    @property
    def reconstructions(self) -> torch.Tensor:
        return self.inversion.reconstructions

    def quality(self) -> list[dict[str, float]]:
        """Per photo: PSNR (dB) and mean absolute error of the reconstruction, both on pixels in [0, 1]."""
        photos = (self.targets + 1) / 2
        faces = (self.reconstructions.clamp(-1, 1) + 1) / 2
        rows = []
        for photo, face in zip(photos, faces, strict=True):
            mse = (photo - face).square().mean().item()
            rows.append({"psnr_db": round(10 * math.log10(1 / max(mse, 1e-10)), 2),
                         "mean_abs_error": round((photo - face).abs().mean().item(), 4)})
        return rows

    def photo_lines(self) -> list[str]:
        """One line per photo: its PSNR and its closest random start's."""
        lines = []
        for path, row, start, end in zip(self.photos, self.quality(), self.inversion.start_loss.tolist(),
                                         self.inversion.loss.tolist(), strict=True):
            where = "the best random start" if self.encoder_dir is None else "the encoder's guess"
            lines.append(f"{path.name}: PSNR {row['psnr_db']:.1f} dB, mean |error| {row['mean_abs_error']:.3f} "
                         f"(pixel loss {start:.4f} at {where} -> {end:.4f})")
        return lines

    def to_json(self) -> dict[str, Any]:
        """The ``invert --json`` document, without its "command" key."""
        photos = []
        for index, (path, row) in enumerate(zip(self.photos, self.quality(), strict=True)):
            entry: dict[str, Any] = {
                "photo": str(path), "index": index,
                "reconstruction": str(self.reconstruction_files[index]) if self.reconstruction_files else None,
                **row, "start_seed": self.inversion.start_seeds[index],
                "pixel_loss": {"best_start": round(self.inversion.start_loss[index].item(), 5),
                               "final": round(self.inversion.loss[index].item(), 5)}}
            if self.inversion.attributes is not None:
                entry["attribute_inputs"] = {name: round(value, 4) for name, value in
                                             zip(self.model_labels, self.inversion.attributes[index].tolist(),
                                                 strict=True)}
            if self.readings is not None:
                entry["readings"] = {when: {name: round(p, 4) for name, p in
                                            zip(self.names, probabilities[index].tolist(), strict=True)}
                                     for when, probabilities in zip(("photo", "reconstruction"), self.readings,
                                                                    strict=True)}
            photos.append(entry)
        options = self.options
        return {"model": str(self.model_dir),
                "classifier": None if self.classifier_dir is None else str(self.classifier_dir),
                "encoder": None if self.encoder_dir is None else str(self.encoder_dir),
                "latents": None if self.out is None else str(self.out), "pixel_range": "[0, 1]",
                "settings": {"steps": options.steps, "starts": 0 if self.encoder_dir else options.starts,
                             "learning_rate": options.learning_rate,
                             "loss": options.pixel_loss, "feature_weight": options.feature_weight,
                             "prior_weight": options.prior_weight, "seed": options.seed},
                "seconds": round(self.seconds, 3), "notes": self.notes, "photos": photos}


def invert(photos: Sequence[str | Path], *, model: str | Path | None = None, classifier: str | Path | None = None,
           out: str | Path | None = None, options: InvertOptions | None = None, device: str = "auto",
           session: SteeringSession | None = None, encoder: str | Path | None = None,
           use_encoder: bool = True) -> InversionReport:
    """Find each photo's latent in a face GAN (default ``gan-celeba``); with ``out``, write the latents there
    (the format of ``sample --save-latents``, which ``steer --from-noise`` reads) and each reconstruction as
    a PNG beside it, named after its photo.

    The classifier (default ``classifier-celeba``, as ``steer``) adds a feature loss, the starting attribute
    inputs of a model trained with ``--condition attributes`` and the readings of photo and reconstruction;
    without one (the default missing), the inversion goes on without them, saying so. A ``session`` gives
    both networks, already loaded (``edit``).

    The start is the guess of ``encoder`` (``latent.encoders.find_encoder``: by default the one beside the
    model, when there is one) instead of random latents; ``use_encoder=False`` keeps the random starts."""
    from latentctl.eval.reading import predict_probabilities
    from latentctl.latent.encoders import find_encoder

    options = options or InvertOptions()
    options.check()
    paths = [Path(photo) for photo in photos]
    if not paths:
        raise UsageError("give at least one photo", "PHOTO")
    if out is not None:
        from latentctl.images import check_writable

        out = Path(out)
        if out.suffix.lower() != ".safetensors":
            raise UsageError(f"{out.name}: end the latents file's name in .safetensors", "--out")
        check_writable(out.with_suffix(".png"))  # its folder, which gets the reconstructions too
    models = session or load_face_models(model, classifier, device)
    generator, config, reader = models.generator, models.config, models.classifier
    reader_labels = [] if reader is None else list(models.classifier_config.labels)
    found = find_encoder(models.model_dir, config, encoder, use=use_encoder,
                         device=next(generator.parameters()).device)
    targets = photo_tensors(paths, config)
    photo_readings = None if reader is None else predict_probabilities(reader, targets)
    attributes = None
    if config.conditioned_on_attributes:
        attributes = starting_attributes(len(paths), config.labels, generator.attribute_prior, photo_readings,
                                         reader_labels)
    start = f"{found.path}'s guess" if found.module is not None else f"{options.starts} random starts"
    console.info(f"inverting {len(paths)} photo(s) into {models.model_dir} ({start}, {options.steps} steps"
                 + (f", matching {models.classifier_dir}'s features)" if reader else ")"))
    began = time.perf_counter()
    inversion = invert_images(generator, targets, options, reader, attributes, found.module)
    seconds = time.perf_counter() - began
    readings = None if reader is None else (photo_readings, predict_probabilities(reader, inversion.reconstructions))
    report = InversionReport(models.model_dir, models.classifier_dir if reader is not None else None, options, paths,
                             targets, inversion, seconds, names=reader_labels, readings=readings, out=out,
                             notes=getattr(models, "notes", []) + ([found.note] if found.note else []),
                             model_labels=list(config.labels), encoder_dir=found.path)
    if out is not None:
        report.reconstruction_files = write_inversion(report, out)
    return report


@dataclass
class _Models:
    """A face generator and, when there is one, the classifier that reads its faces (a SteeringSession's shape)."""

    generator: torch.nn.Module
    config: ModelConfig
    model_dir: Path
    classifier: torch.nn.Module | None
    classifier_config: ModelConfig | None
    classifier_dir: Path | None
    notes: list[str]


def load_face_models(model: str | Path | None, classifier: str | Path | None, device: str) -> _Models:
    """Load the face GAN and, as ``steer`` resolves it, the classifier: one that is not there by default is
    left out with a note; one given that is not there, or that does not fit the generator, is an error."""
    from latentctl.device import resolve_device
    from latentctl.latent.attributes import check_pair
    from latentctl.store import load_model, read_config

    torch_device = resolve_device(device)
    model_dir = lookup.resolve_model(model, "gan-celeba")
    check_face_model(read_config(model_dir, ("gan", "cgan")), model_dir)
    generator, config = load_model(model_dir, "gan", torch_device)
    classifier_dir = lookup.resolve_model(classifier, "classifier-celeba")
    if classifier is None and not classifier_dir.exists():
        note = (f"no attribute classifier at {classifier_dir}: no feature loss and no attribute readings (train one "
                "with 'latentctl train classifier', or pass --classifier)")
        console.warn(note)
        return _Models(generator, config, model_dir, None, None, None, [note])
    reader, reader_config = load_model(classifier_dir, "classifier", torch_device, option="--classifier")
    check_pair(config, reader_config, model_dir, classifier_dir)
    return _Models(generator, config, model_dir, reader, reader_config, classifier_dir, [])


def starting_attributes(count: int, labels: list[str], prior: torch.Tensor, readings: torch.Tensor | None,
                        reader_labels: list[str]) -> torch.Tensor:
    """The attribute inputs (N, A_g) an inversion starts from: the classifier's reading of each photo for the
    attributes it reads, the share of the generator's training faces that have it for the others."""
    start = prior.float().mean(0).cpu().expand(count, -1).clone()  # (N, A_g)
    for column, name in enumerate(labels):
        if readings is not None and name in reader_labels:
            start[:, column] = readings[:, reader_labels.index(name)]
    return start


def write_inversion(report: InversionReport, out: Path) -> list[Path]:
    """Write the latents (and attribute inputs) to ``out`` and each reconstruction beside it as a PNG named
    after its photo; return the PNGs' paths."""
    from latentctl import images as image_io
    from latentctl.latent.sampling import save_latents

    save_latents(out, report.latents, attributes=report.inversion.attributes, attribute_names=report.model_labels)
    written, taken = [], set()
    for index, (path, face) in enumerate(zip(report.photos, report.reconstructions, strict=True)):
        name = f"{path.stem}-reconstruction.png"
        if name in taken:  # two photos of one name, from two folders
            name = f"{path.stem}-{index}-reconstruction.png"
        taken.add(name)
        written.append(image_io.save_image(image_io.to_pil(face[None], nrow=1, padding=0), out.parent / name))
    return written
