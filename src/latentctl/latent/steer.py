"""Attribute steering: move latents so that a frozen classifier reads more (or less) of some attributes in the
faces a frozen generator draws, while the other attributes stay where they were. Three methods: ``gradient``
(the classifier's gradient, with keep-others and prior terms), ``direction`` (fixed fitted directions, the kept
ones projected out) and ``label`` (turning the attribute input of a conditioned generator). docs/steering.md
gives each term and its measurements."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from latentctl.latent import DEFAULT_FRAMES, DEFAULT_KEEP_OTHERS, DEFAULT_STEPS, DEFAULT_STRENGTH, DEFAULT_VIEWS

METHODS = ("gradient", "direction", "label")


@dataclass(frozen=True)
class Target:
    """One attribute to steer: its column in the classifier's output and the way to push it."""

    index: int
    name: str
    sign: int  # +1: towards the attribute, -1: away from it


@dataclass(frozen=True)
class SteerSettings:
    """How far and how carefully to move; see the module docstring."""

    method: str = "gradient"
    steps: int = DEFAULT_STEPS
    strength: float = DEFAULT_STRENGTH  # latent distance travelled over all steps
    keep_others: float = DEFAULT_KEEP_OTHERS  # weight of the keep-the-others term (gradient); > 0 projects (direction)
    prior: float = 1.0  # weight of the stay-on-the-shell term (gradient)
    until: float | None = None  # stop a face once every target's probability is past this
    frames: int = DEFAULT_FRAMES
    views: int = DEFAULT_VIEWS  # faces the classifier reads per face and step (gradient); 1: the face alone
    smoothing: float = 0.5  # standard deviation of the latent noise that makes the other views
    seed: int = 0  # of that noise

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.views < 1 or self.smoothing < 0:
            raise ValueError("views must be >= 1 and smoothing >= 0")
        if self.steps < 1 or self.frames < 2 or self.frames > self.steps + 1:
            raise ValueError("steps must be >= 1 and frames in [2, steps + 1]")
        if not (self.strength > 0 and self.keep_others >= 0 and self.prior >= 0):
            raise ValueError("strength must be > 0, keep_others and prior >= 0")
        if self.until is not None and not 0.5 < self.until < 1:
            raise ValueError("until must be a probability in (0.5, 1)")

    def frame_steps(self) -> list[int]:
        """The step after which each frame is taken: 0 (the start), ..., ``steps``."""
        return [round(i * self.steps / (self.frames - 1)) for i in range(self.frames)]


@dataclass
class Steering:
    """What a steering run made: the latents, images and the steering classifier's readings of every frame."""

    latents: torch.Tensor  # (N, F, D)
    images: torch.Tensor  # (N, F, C, H, W) in [-1, 1], on the CPU
    probabilities: torch.Tensor  # (N, F, A), the steering classifier's
    frame_steps: list[int]
    steps_taken: torch.Tensor  # (N,) moves each face made before it reached ``until`` (or all of them)
    attributes: torch.Tensor | None = None  # (N, F, A_g) the generator's attribute input per frame, if it has one


def steer(generator: torch.nn.Module, classifier: torch.nn.Module, noise: torch.Tensor, targets: list[Target],
          settings: SteerSettings, direction: torch.Tensor | None = None, batch_size: int = 64,
          attributes: tuple[torch.Tensor, torch.Tensor] | None = None) -> Steering:
    """Steer latents (N, D) towards/away from ``targets``; both networks frozen, in eval mode.

    The ``direction`` method needs ``direction`` (D,): the unit move, already conditioned (see
    ``AttributeDirections.move``). A generator conditioned on attributes needs ``attributes``: the start and
    end attribute vectors, each (N, A_g) in [0, 1] (see the module docstring); the ``label`` method needs
    one. Faces are steered ``batch_size`` at a time, all of a batch at once.
    """
    if not targets:
        raise ValueError("steering needs at least one target attribute")
    if noise.shape[0] == 0:
        raise ValueError("steering needs at least one face")
    if settings.method == "direction" and direction is None:
        raise ValueError("the direction method needs a direction")
    if settings.method == "label" and attributes is None:
        raise ValueError("the label method needs a generator conditioned on attributes, and their start and end")
    generator.eval()
    classifier.eval()
    parts = []
    for begin in range(0, noise.shape[0], batch_size):
        batch = slice(begin, begin + batch_size)
        faces = _Faces(generator, None if attributes is None else (attributes[0][batch], attributes[1][batch]))
        parts.append(_steer_batch(faces, classifier, noise[batch], targets, settings, direction))
    return Steering(latents=torch.cat([p[0] for p in parts]), images=torch.cat([p[1] for p in parts]),
                    probabilities=torch.cat([p[2] for p in parts]), frame_steps=settings.frame_steps(),
                    steps_taken=torch.cat([p[3] for p in parts]),
                    attributes=None if attributes is None else torch.cat([p[4] for p in parts]))


class _Faces:
    """Draws a batch's faces from latents and, for a generator conditioned on attributes, each face's progress
    (B,) in [0, 1] along its line from the start attributes to the end ones."""

    def __init__(self, generator: torch.nn.Module, attributes: tuple[torch.Tensor, torch.Tensor] | None) -> None:
        self.generator = generator
        self.device = next(generator.parameters()).device
        self.start, self.end = (None, None) if attributes is None else (
            attributes[0].to(self.device, torch.float32), attributes[1].to(self.device, torch.float32))

    def attributes(self, progress: torch.Tensor, frames: int = 1) -> torch.Tensor | None:
        """The attribute input (B * frames, A_g) at ``progress`` (B * frames,): each face's ``frames`` rows in turn
        (face-major), or None for a generator without one."""
        if self.start is None or self.end is None:
            return None
        start, end = self.start.repeat_interleave(frames, 0), self.end.repeat_interleave(frames, 0)
        return start + progress[:, None] * (end - start)

    def __call__(self, latent: torch.Tensor, progress: torch.Tensor) -> torch.Tensor:
        """Images of ``latent`` (k * B, D): k groups of the batch's B faces, in its order."""
        attributes = self.attributes(progress)
        if attributes is None:
            return self.generator(latent)
        return self.generator(latent, attributes.repeat(latent.shape[0] // attributes.shape[0], 1))


def _steer_batch(faces: _Faces, classifier: torch.nn.Module, noise: torch.Tensor, targets: list[Target],
                 settings: SteerSettings, direction: torch.Tensor | None):
    device = faces.device
    start = noise.to(device=device, dtype=torch.float32)  # (B, D)
    columns = torch.tensor([t.index for t in targets], device=device)
    signs = torch.tensor([float(t.sign) for t in targets], device=device)
    step_length = settings.strength / settings.steps
    move = None if direction is None else direction.to(device=device, dtype=torch.float32)[None]

    batch = start.shape[0]
    no_progress = torch.zeros(batch, device=device)
    with torch.no_grad():
        start_logits = classifier(faces(start, no_progress))  # (B, A)
    others = torch.ones(start_logits.shape[1], dtype=torch.bool, device=device)
    others[columns] = False
    start_radius = start.norm(dim=1)
    latent = start.clone()
    # Each face moves its noise while ``moving`` (not with the label method) and, on a generator conditioned on
    # attributes, turns its attribute input while ``turning``; --until stops both once the face as drawn reads
    # the targets. The gradient there is read with the input already turned all the way, where the walk ends,
    # so the noise only moves for what the turned input does not show: it stops as soon as that reading is
    # past --until, while the input goes on turning until the face itself is.
    conditioned = faces.start is not None
    read_at_end = conditioned and settings.method == "gradient"
    moving = torch.full((batch,), settings.method != "label", dtype=torch.bool, device=device)
    turning = torch.full((batch,), conditioned, dtype=torch.bool, device=device)
    moved = torch.zeros(batch, dtype=torch.long, device=device)
    turned = torch.zeros(batch, dtype=torch.long, device=device)
    frame_steps = settings.frame_steps()
    snapshots = [latent.clone()]
    progress_snapshots = [no_progress.clone()]
    logits = start_logits
    views_rng = torch.Generator(device=device).manual_seed(settings.seed)
    all_the_way = torch.ones(batch, device=device)
    for step in range(1, settings.steps + 1):
        progress = turned.float() / settings.steps
        reading = None  # the face as drawn now, when the gradient reads another one
        if settings.method == "gradient":
            with torch.enable_grad():
                candidate = latent.detach().requires_grad_(True)
                read = functools.partial(faces, progress=all_the_way if read_at_end else progress)
                logits_now, logits = smoothed_logits(classifier, read, candidate, settings.views, settings.smoothing,
                                                     views_rng)
                objective = steering_objective(logits_now, start_logits, candidate, start_radius, columns, signs,
                                               others, settings.keep_others, settings.prior)
                (gradient,) = torch.autograd.grad(objective.sum(), candidate)
            logits = logits.detach()  # the reading of the faces themselves, for --until
            step_move = gradient / gradient.norm(dim=1, keepdim=True).clamp_min(1e-12)
            if read_at_end and settings.until is not None:
                with torch.no_grad():
                    reading = start_logits if step == 1 else classifier(faces(latent, progress))
        else:
            if settings.until is not None and step > 1:
                with torch.no_grad():
                    logits = classifier(faces(latent, progress))
            step_move = torch.zeros_like(latent) if move is None else move.expand_as(latent)
        if settings.until is not None:
            shown = _reached(logits if reading is None else reading, columns, signs, settings.until)
            if reading is not None:
                moving &= ~_reached(logits, columns, signs, settings.until)
            moving &= ~shown
            turning &= ~shown
            if not (moving | turning).any():
                later = [s for s in frame_steps if s >= step]
                snapshots += [latent.clone()] * len(later)
                progress_snapshots += [turned.float() / settings.steps] * len(later)
                break
        latent = torch.where(moving[:, None], latent + step_length * step_move, latent).detach()
        moved += moving.long()
        turned += turning.long()
        snapshots += [latent.clone()] * frame_steps.count(step)
        progress_snapshots += [turned.float() / settings.steps] * frame_steps.count(step)
    steps_taken = torch.maximum(moved, turned)

    latents = torch.stack(snapshots, dim=1)  # (B, F, D)
    progresses = torch.stack(progress_snapshots, dim=1)  # (B, F)
    frames = len(frame_steps)
    with torch.inference_mode():
        flat, flat_progress = latents.flatten(0, 1), progresses.flatten(0, 1)
        attributes = faces.attributes(flat_progress, frames)  # (B * F, A_g) or None
        images = faces.generator(flat) if attributes is None else faces.generator(flat, attributes)
        probabilities = torch.sigmoid(classifier(images)).float()
    return (latents.cpu(), images.float().cpu().unflatten(0, (-1, frames)),
            probabilities.cpu().unflatten(0, (-1, frames)), steps_taken.cpu(),
            None if attributes is None else attributes.cpu().unflatten(0, (-1, frames)))


def smoothed_logits(classifier: torch.nn.Module, generator: Callable[[torch.Tensor], torch.Tensor],
                    latent: torch.Tensor, views: int,
                    smoothing: float, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the classifier's logits (B, A) of the faces drawn from ``latent`` (B, D) averaged over ``views``
    nearby latents, and its logits (B, A) of the faces of ``latent`` itself (the first view).

    Each other view adds Gaussian noise of standard deviation ``smoothing`` to every latent coordinate. A
    classifier's gradient at one exact face is mostly made of changes no person would see (the weakness
    adversarial examples exploit): through the generator they become a texture or a background shade that
    raises the steering classifier's score and nobody else's. Such changes differ from one face to the
    next, while the attribute itself is what the faces around a latent share, so the gradient of the
    average follows the attribute (SmoothGrad, Smilkov et al., 2017, taken into latent space).
    """
    if views == 1 or smoothing == 0:
        logits = classifier(generator(latent))
        return logits, logits
    offsets = torch.randn((views - 1, *latent.shape), generator=rng, device=latent.device) * smoothing
    nearby = torch.cat([latent[None], latent[None] + offsets]).flatten(0, 1)  # (views * B, D)
    logits = classifier(generator(nearby)).unflatten(0, (views, latent.shape[0]))  # (views, B, A)
    return logits.mean(0), logits[0]


def steering_objective(logits: torch.Tensor, start_logits: torch.Tensor, latent: torch.Tensor,
                       start_radius: torch.Tensor, columns: torch.Tensor, signs: torch.Tensor,
                       others: torch.Tensor, keep_others: float, prior: float) -> torch.Tensor:
    """Return the per-face objective (B,) the gradient method ascends; see the module docstring."""
    objective = (logits[:, columns] * signs).sum(dim=1)
    if keep_others > 0 and others.any():
        drift = logits[:, others] - start_logits[:, others]
        objective = objective - keep_others * drift.square().mean(dim=1)
    if prior > 0:
        objective = objective - prior * (latent.norm(dim=1) - start_radius).square()
    return objective


def _reached(logits: torch.Tensor, columns: torch.Tensor, signs: torch.Tensor, until: float) -> torch.Tensor:
    """Faces (B,) whose every target is past ``until``: probability above it, or below 1 - it when away."""
    threshold = math.log(until / (1 - until))
    return ((logits[:, columns] * signs) >= threshold).all(dim=1)

