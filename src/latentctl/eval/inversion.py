"""How well real photos are inverted and edited, read by an independent judge (``eval invert``).

For each way of starting the inversion (random starts, and the encoder when the model has one) it measures,
on the photos: how close the reconstructions come (PSNR, mean absolute error) and how many of the judge's
readable attributes it reads the same on photo and reconstruction; then, per target attribute, on the photos
the judge reads as not having it, steering the latent found (``steer``'s gradient method) and scoring it as
``eval steer`` does (success, the others' change, the pixels moved). A known-latent test inverts faces the
GAN drew itself and says how close the recovered face and latent come. docs/editing.md has the numbers.

Importing this module loads no torch: the CLI reads ``InvertEvalOptions``' defaults while building ``--help``."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latentctl import console
from latentctl.errors import LatentctlError, UsageError
from latentctl.eval.steering import DEFAULT_ATTRIBUTES
from latentctl.latent.inversion import InvertOptions
from latentctl.latent.session import SteerOptions

if TYPE_CHECKING:
    import torch

    from latentctl.latent.session import SteeringSession

KNOWN_SEEDS = 2_000_000  # the known-latent faces are those of seeds 2,000,000 + seed, ...: not the random starts


@dataclass(frozen=True)
class InvertEvalOptions:
    """Every setting of ``eval invert``, with its defaults: the inversion's are ``invert``'s, the edits' ``steer``'s."""

    attributes: tuple[str, ...] = DEFAULT_ATTRIBUTES
    photos: int = 64  # at most, the first in file-name order
    known: int = 32  # faces the GAN draws itself, inverted for the known-latent test (0: none)
    steps: int = InvertOptions.steps
    starts: int = InvertOptions.starts
    edit_steps: int = SteerOptions.steps
    strength: float = SteerOptions.strength
    keep_others: float = SteerOptions.keep_others
    views: int = SteerOptions.views
    seed: int = 0


@dataclass
class StartScore:
    """How one way of starting did: reconstruction on the photos, and the known-latent test."""

    start: str  # "random starts" or "encoder"
    photos: int
    psnr_db: float
    mean_abs_error: float
    agreement: float | None  # share of (photo, readable attribute) the judge reads the same on photo and reconstruction
    seconds_per_face: float
    known_faces: int
    known_psnr_db: float | None
    known_latent_rmse: float | None  # root mean squared error of the recovered latent, per coordinate
    known_latent_cosine: float | None  # mean cosine similarity of recovered and true latent


@dataclass
class EditScore:
    """Steering the latents one way of starting found towards one attribute, read by the judge."""

    start: str
    attribute: str
    faces: int  # photos the judge reads as not having it; 0: nothing scored
    success: float | None
    others: float | None
    moved: float | None


@dataclass
class InvertEvaluation:
    """What ``evaluate_invert`` measured."""

    model_dir: Path
    classifier_dir: Path
    judge_dir: Path
    encoder_dir: Path | None
    readable: list[str]
    options: InvertEvalOptions
    photos: list[Path]
    starts: list[StartScore]
    edits: list[EditScore]
    notes: list[str]

    def print_tables(self) -> None:
        """Print the reconstruction, known-latent and edit tables (stderr)."""
        console.print_table(f"inverting {len(self.photos)} photos, read by the judge",
                            ["start", "PSNR", "mean |error|", "judge agrees", "per face"],
                            [[s.start, f"{s.psnr_db:.2f} dB", f"{s.mean_abs_error:.4f}", _cell(s.agreement, "{:.1%}"),
                              f"{s.seconds_per_face:.2f}s"] for s in self.starts])
        if self.options.known:
            console.print_table(f"inverting {self.options.known} faces the GAN drew itself",
                                ["start", "PSNR", "latent RMSE", "latent cosine"],
                                [[s.start, f"{s.known_psnr_db:.2f} dB", f"{s.known_latent_rmse:.3f}",
                                  f"{s.known_latent_cosine:.3f}"] for s in self.starts])
        console.print_table("editing the inverted photos, read by the judge",
                            ["start", "attribute", "photos", "success", "others", "moved"],
                            [[e.start, e.attribute, e.faces, _cell(e.success, "{:.0%}"), _cell(e.others, "{:.3f}"),
                              _cell(e.moved, "{:.3f}")] for e in self.edits])

    def to_json(self) -> dict[str, Any]:
        """The ``eval invert --json`` document, without its "command" key."""
        return {"model": str(self.model_dir), "classifier": str(self.classifier_dir), "judge": str(self.judge_dir),
                "encoder": None if self.encoder_dir is None else str(self.encoder_dir), "readable": self.readable,
                "photos": len(self.photos), "pixel_range": "[0, 1]",
                "settings": {key: list(value) if isinstance(value, tuple) else value
                             for key, value in asdict(self.options).items()},
                "starts": [_rounded(asdict(score)) for score in self.starts],
                "edits": [_rounded(asdict(score)) for score in self.edits], "notes": self.notes}


def evaluate_invert(photos: Sequence[str | Path], *, judge: str | Path, options: InvertEvalOptions | None = None,
                    model: str | Path | None = None, classifier: str | Path | None = None,
                    encoder: str | Path | None = None, use_encoder: bool = True,
                    device: str = "auto") -> InvertEvaluation:
    """Invert ``photos`` (files, or folders searched for images) into a face GAN with random starts and, when
    there is one (``latent.encoders.find_encoder``), from the encoder's guess; score each as the module
    docstring says, read by ``judge`` (a second classifier, never the one that steers)."""
    from latentctl.eval.steering import load_judge
    from latentctl.latent.attributes import resolve_attributes
    from latentctl.latent.encoders import find_encoder
    from latentctl.latent.inversion import photo_tensors
    from latentctl.latent.session import SteeringSession

    options = options or InvertEvalOptions()
    paths = photo_files(photos, options.photos)
    session = SteeringSession.load(model, classifier, device)
    if session.conditioned:
        raise LatentctlError(f"{session.model_dir} is conditioned on attributes: eval invert measures a GAN that "
                             "draws from its latent alone", hint="pass --model with an unconditional face GAN")

    targets = list(dict.fromkeys(resolve_attributes(options.attributes, session.names, "--attribute")))
    judge_model, judge_config, judge_dir, readable = load_judge(session, judge, targets)
    found = find_encoder(session.model_dir, session.config, encoder, use=use_encoder, device=session.device)
    notes = [found.note] if found.note else []
    if found.module is None and use_encoder:
        notes.append(f"no encoder for {session.model_dir}: random starts only (train one with 'latentctl train "
                     "encoder')")
        console.warn(notes[-1])
    targets_images = photo_tensors(paths, session.config)
    ways = [("random starts", None)] + ([("encoder", found.module)] if found.module is not None else [])
    console.info(f"inverting {len(paths)} photos and {options.known} of the GAN's own faces from "
                 f"{' and from '.join(name for name, _ in ways)}, then steering them towards "
                 f"{', '.join(targets)}; judged by {judge_dir} on {len(readable)} attributes it reads")
    starts, edits = [], []
    for name, module in ways:
        score, latents = _score_start(session, judge_model, judge_config.labels, readable,
                                                       targets_images, name, module, options)
        starts.append(score)
        console.info(f"{name}: PSNR {score.psnr_db:.2f} dB on the photos, {score.seconds_per_face:.2f}s a face; "
                     "steering the photos found")
        edits += _score_edits(session, judge_model, judge_config.labels, readable, targets, targets_images,
                              latents, name, options)
    return InvertEvaluation(session.model_dir, session.classifier_dir, judge_dir, found.path, readable, options,
                            paths, starts, edits, notes)


def photo_files(photos: Sequence[str | Path], limit: int) -> list[Path]:
    """The first ``limit`` photos of ``photos``: files as given, folders' images in name order."""
    from latentctl.data.folders import image_files

    found: list[Path] = []
    for photo in map(Path, photos):
        found += [photo / name for name in image_files(photo)] if photo.is_dir() else [photo]
    if not found:
        raise UsageError("no photos: give image files or folders holding them", "PHOTOS")
    return found[:limit]


def _score_start(session: SteeringSession, judge: torch.nn.Module, judge_names: list[str], readable: list[str],
                 targets: torch.Tensor, name: str, encoder: torch.nn.Module | None, options: InvertEvalOptions
                 ) -> tuple[StartScore, torch.Tensor]:
    """Invert the photos ``targets`` and the known-latent faces from one way of starting; score both."""
    import torch

    from latentctl.eval.reading import predict_probabilities
    from latentctl.latent.inversion import invert_images
    from latentctl.latent.sampling import noise_for_seeds

    invert_options = InvertOptions(steps=options.steps, starts=options.starts, seed=options.seed)
    invert_images(session.generator, targets[:1], InvertOptions(steps=1, starts=1), session.classifier,
                  encoder=encoder)  # warm up: the first passes set up kernels, which the timing leaves out
    began = time.perf_counter()
    inversion = invert_images(session.generator, targets, invert_options, session.classifier, encoder=encoder)
    seconds = time.perf_counter() - began
    psnr, error = reconstruction_error(targets, inversion.reconstructions)
    columns = [judge_names.index(attribute) for attribute in readable]
    photo_read = predict_probabilities(judge, targets)[:, columns] > 0.5
    face_read = predict_probabilities(judge, inversion.reconstructions)[:, columns] > 0.5
    known = {"known_faces": options.known, "known_psnr_db": None, "known_latent_rmse": None,
             "known_latent_cosine": None}
    if options.known:
        true = noise_for_seeds(range(KNOWN_SEEDS + options.seed, KNOWN_SEEDS + options.seed + options.known),
                               session.config.latent_dim)
        with torch.no_grad():
            faces = session.generator(true.to(session.device)).cpu()
        recovered = invert_images(session.generator, faces, invert_options, session.classifier, encoder=encoder)
        known |= {"known_psnr_db": reconstruction_error(faces, recovered.reconstructions)[0],
                  "known_latent_rmse": (recovered.latents - true).square().mean().sqrt().item(),
                  "known_latent_cosine": torch.nn.functional.cosine_similarity(recovered.latents, true).mean().item()}
    score = StartScore(start=name, photos=targets.shape[0], psnr_db=psnr, mean_abs_error=error,
                       agreement=(photo_read == face_read).float().mean().item() if columns else None,
                       seconds_per_face=seconds / targets.shape[0], **known)
    return score, inversion.latents


def reconstruction_error(photos: torch.Tensor, faces: torch.Tensor) -> tuple[float, float]:
    """Mean PSNR (dB) and mean absolute error of ``faces`` against ``photos`` (N, C, S, S) in [-1, 1], both on
    pixels in [0, 1]: ``InversionReport.quality``'s numbers, averaged over the photos."""
    difference = (photos - faces.clamp(-1, 1)) / 2
    mse = difference.square().flatten(1).mean(1).clamp_min(1e-10)
    return (10 * (1 / mse).log10()).mean().item(), difference.abs().mean().item()


def _score_edits(session: SteeringSession, judge: torch.nn.Module, judge_names: list[str], readable: list[str],
                 targets: list[str], photos: torch.Tensor, latents: torch.Tensor, name: str,
                 options: InvertEvalOptions) -> list[EditScore]:
    """Steer the latents found towards each target attribute, on the photos the judge reads as not having it."""
    from latentctl.eval.reading import predict_probabilities
    from latentctl.eval.steering import judged_walk
    from latentctl.latent.steer import SteerSettings, Target, steer

    settings = SteerSettings(steps=options.edit_steps, strength=options.strength, keep_others=options.keep_others,
                             frames=2, views=options.views, seed=options.seed)
    photo_read = predict_probabilities(judge, photos)
    scores = []
    for attribute in targets:
        judge_column = judge_names.index(attribute)
        chosen = photo_read[:, judge_column] < 0.5
        if not chosen.any():
            scores.append(EditScore(name, attribute, 0, None, None, None))
            continue
        walk = steer(session.generator, session.classifier, latents[chosen],
                     [Target(session.names.index(attribute), attribute, +1)], settings)
        others = [judge_names.index(other) for other in readable if other != attribute]
        judged = judged_walk(judge, walk.images[:, 0], walk.images[:, -1], judge_column, others)
        scores.append(EditScore(name, attribute, int(chosen.sum()), **judged))
    return scores


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {key: round(value, 4) if isinstance(value, float) else value for key, value in values.items()}


def _cell(value: float | None, form: str) -> str:
    return "-" if value is None else form.format(value)
