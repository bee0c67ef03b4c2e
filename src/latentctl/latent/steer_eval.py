"""How well steering works, judged the way a person would: by a second classifier that did not steer.

A steering method is only as good as what an independent reader sees in the result. The classifier that
steers can be fooled by its own gradient (it finds changes only it responds to), so every number here is
read by a *judge*, another classifier trained independently (other seed or architecture). For each target
attribute, on faces the judge reads as not having it:

- success: the share whose last frame the judge reads as having it (probability past 0.5);
- others: the mean absolute change of the judge's probabilities of the other attributes it can read;
- moved: how far the face moved, as the mean absolute pixel change in [0, 1].

A generator conditioned on attributes starts each face from a real attribute mix without the target
(drawn as ``sample`` draws them, ``latent.attributes.steering_attributes``), and is scored with the
``gradient`` and ``label`` methods; without keep-others, its other attribute inputs follow the target as
the data correlates them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch

from latentctl.latent.attributes import steering_attributes, turned_attributes
from latentctl.latent.directions import AttributeDirections
from latentctl.latent.sampling import noise_for_seeds
from latentctl.latent.steer import SteerSettings, Target, steer

READABLE = 0.8  # the judge reads an attribute when its validation balanced accuracy is at least this


@dataclass
class SteerScore:
    """One row of the evaluation: a target attribute steered by one method, with or without keep-others."""

    attribute: str
    method: str
    keep_others: float
    faces: int  # 0 when the judge read every face searched as having the attribute: nothing was scored
    success: float | None  # the judge reads the attribute at the last frame
    steerer_success: float | None  # the steering classifier does (a gap to ``success`` = fooling the steerer)
    others: float | None  # mean |change| of the judge's other readable attributes
    moved: float | None  # mean |pixel change| in [0, 1]
    seconds: float

    def to_dict(self) -> dict:
        return {key: round(value, 4) if isinstance(value, float) else value for key, value in asdict(self).items()}


def readable_attributes(judge_names: list[str], validation: dict[str, float] | None) -> list[str]:
    """The attributes a judge can read: validation balanced accuracy >= READABLE (all of them if unknown)."""
    if not validation:
        return list(judge_names)
    return [name for name in judge_names if validation.get(name, 0.0) >= READABLE]


def evaluate_steering(generator: torch.nn.Module, classifier: torch.nn.Module, names: list[str],
                      judge: torch.nn.Module, judge_names: list[str], readable: list[str], latent_dim: int,
                      attributes: list[str], settings: SteerSettings, keep_values: tuple[float, ...],
                      methods: tuple[str, ...], directions: AttributeDirections | None, faces: int = 64,
                      seed: int = 0, generator_labels: list[str] | None = None,
                      reach: float = 1.0) -> list[SteerScore]:
    """Score steering towards each of ``attributes`` for every method and keep-others weight.
    ``generator_labels``: the attributes of a generator conditioned on them, whose targets' inputs turn
    ``reach`` times as far and whose other inputs are held with keep-others, or follow the targets without
    it (``latent.attributes.turned_attributes``)."""
    scores = []
    for attribute in attributes:
        column, judge_column = names.index(attribute), judge_names.index(attribute)
        target = [Target(column, attribute, +1)]
        draw = None
        if generator_labels is not None:
            def draw(seeds: list[int], target: list[Target] = target) -> tuple[torch.Tensor, torch.Tensor]:
                return steering_attributes(generator.attribute_prior, generator_labels, target, seeds,
                                           label_only="label" in methods, reach=reach)
        noise, inputs = starting_faces(generator, judge, judge_column, latent_dim, faces, seed, draw)
        others = [judge_names.index(name) for name in readable if name != attribute]
        if noise.shape[0] == 0:  # every face already has it, as the judge reads them
            scores += [SteerScore(attribute=attribute, method=method, keep_others=keep, faces=0, success=None,
                                  steerer_success=None, others=None, moved=None, seconds=0.0)
                       for method in methods for keep in keep_values]
            continue
        inputs_by_keep = {keep: inputs if inputs is None or keep > 0 else  # without keep-others: entangled
                          (inputs[0], turned_attributes(generator.attribute_prior, generator_labels, target,
                                                        inputs[0], keep_others=False, reach=reach))
                          for keep in keep_values}
        for method in methods:
            for keep in keep_values:
                run_settings = replace(settings, method=method, keep_others=keep)
                direction = directions.move([(column, +1)], keep > 0) if method == "direction" else None
                started = time.perf_counter()
                result = steer(generator, classifier, noise, target, run_settings, direction,
                               attributes=inputs_by_keep[keep])
                seconds = time.perf_counter() - started
                first, last = result.images[:, 0], result.images[:, -1]
                judged_first, judged_last = _judge(judge, first), _judge(judge, last)
                scores.append(SteerScore(
                    attribute=attribute, method=method, keep_others=keep, faces=noise.shape[0],
                    success=(judged_last[:, judge_column] > 0.5).float().mean().item(),
                    steerer_success=(result.probabilities[:, -1, column] > 0.5).float().mean().item(),
                    others=(judged_last[:, others] - judged_first[:, others]).abs().mean().item() if others else 0.0,
                    moved=((last - first).abs().mean() / 2).item(), seconds=seconds))
    return scores


def starting_faces(generator: torch.nn.Module, judge: torch.nn.Module, column: int, latent_dim: int, faces: int,
                   seed: int, draw: Callable[[list[int]], tuple[torch.Tensor, torch.Tensor]] | None = None,
                   ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
    """Return the latents (<= faces, D) of the first seeds from ``seed`` on whose faces the judge reads as
    not having attribute ``column``; a pool of up to 40 x ``faces`` seeds is searched.

    For a generator conditioned on attributes, ``draw`` gives each seed's start and end attribute inputs,
    returned (for the chosen faces) beside the latents; None otherwise."""
    found: list[torch.Tensor] = []
    starts: list[torch.Tensor] = []
    ends: list[torch.Tensor] = []
    count, start, pool = 0, seed, max(faces, 64)
    device = next(generator.parameters()).device
    while count < faces and start < seed + 40 * faces:
        seeds = list(range(start, start + pool))
        noise = noise_for_seeds(seeds, latent_dim)
        begin, end = draw(seeds) if draw is not None else (None, None)
        with torch.inference_mode():
            images = generator(noise.to(device)) if begin is None else generator(noise.to(device), begin.to(device))
            keep = (_judge(judge, images)[:, column] < 0.5).cpu()
        found.append(noise[keep][:faces - count])
        if begin is not None and end is not None:
            starts.append(begin[keep][:faces - count])
            ends.append(end[keep][:faces - count])
        count += found[-1].shape[0]
        start += pool
    noise = torch.cat(found) if found else torch.empty(0, latent_dim)
    return noise, ((torch.cat(starts), torch.cat(ends)) if starts else None)


@torch.inference_mode()
def _judge(judge: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    device = next(judge.parameters()).device
    judge.eval()
    return torch.cat([torch.sigmoid(judge(images[i:i + 256].to(device))).float().cpu()
                      for i in range(0, images.shape[0], 256)])
