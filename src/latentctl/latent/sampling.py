"""Latent vectors identified by seeds, truncation, interpolation paths, and batched generation."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def noise_for_seeds(seeds: Sequence[int], latent_dim: int, truncation: float | None = None) -> torch.Tensor:
    """Return noise (N, latent_dim): row i drawn from N(0, I) by a generator seeded with ``seeds[i]``.

    Drawn on the CPU, so a seed names the same latent on every device. With ``truncation`` T, entries
    outside [-T, T] are redrawn (the truncation trick: less variety, more typical samples).
    """
    rows = []
    for seed in seeds:
        rng = torch.Generator().manual_seed(int(seed))
        row = torch.randn(latent_dim, generator=rng)
        if truncation is not None:
            outside = row.abs() > truncation
            while outside.any():
                row[outside] = torch.randn(int(outside.sum()), generator=rng)
                outside = row.abs() > truncation
        rows.append(row)
    return torch.stack(rows) if rows else torch.empty(0, latent_dim)


def lerp(start: torch.Tensor, end: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Linear interpolation: (D,), (D,), (T,) -> (T, D)."""
    return start[None] + weights[:, None] * (end - start)[None]


def slerp(start: torch.Tensor, end: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation: (D,), (D,), (T,) -> (T, D).

    Gaussian latents concentrate near a sphere; a straight line between two of them cuts through the
    low-density interior (its midpoint has ~0.71x the norm), slerp stays on the shell.
    """
    start_unit, end_unit = start / start.norm(), end / end.norm()
    angle = torch.arccos((start_unit * end_unit).sum().clamp(-1.0, 1.0))
    if angle.abs() < 1e-4:  # (anti)parallel: slerp degenerates, lerp is exact enough
        return lerp(start, end, weights)
    sin_angle = torch.sin(angle)
    start_weight = torch.sin((1 - weights) * angle) / sin_angle
    end_weight = torch.sin(weights * angle) / sin_angle
    return start_weight[:, None] * start[None] + end_weight[:, None] * end[None]


INTERPOLATIONS = {"lerp": lerp, "slerp": slerp}


@torch.inference_mode()
def generate(generator: torch.nn.Module, noise: torch.Tensor, labels: torch.Tensor | None = None,
             embeddings: torch.Tensor | None = None, batch_size: int = 256) -> torch.Tensor:
    """Run ``generator`` in eval mode over noise (N, D) in batches; return images (N, C, H, W) on the CPU.

    Give either integer ``labels`` (N,) or label ``embeddings`` (N, E) for a conditional generator.
    """
    device = next(generator.parameters()).device
    generator.eval()
    outputs = []
    for start in range(0, noise.shape[0], batch_size):
        chunk = slice(start, start + batch_size)
        batch_noise = noise[chunk].to(device)
        if embeddings is not None:
            images = generator.synthesize(batch_noise, embeddings[chunk].to(device))
        elif labels is not None:
            images = generator(batch_noise, labels[chunk].to(device))
        else:
            images = generator(batch_noise)
        outputs.append(images.float().cpu())
    return torch.cat(outputs) if outputs else torch.empty(0)


def interpolation_walks(generator: torch.nn.Module, latent_dim: int, seed: int, rows: int, frames: int,
                        mode: str, start_labels: Sequence[int] | None = None,
                        end_labels: Sequence[int] | None = None,
                        attributes: torch.Tensor | None = None) -> torch.Tensor:
    """Return images (rows, frames, C, H, W): row r walks from the noise of seed S+2r to that of S+2r+1.

    With labels, the label embedding is blended linearly from ``start_labels[r]`` to ``end_labels[r]``
    (the same label when ``end_labels`` is None), so one digit can morph into another. A generator
    conditioned on attributes keeps row r's ``attributes[r]`` (rows, A) along its walk.
    """
    weights = torch.linspace(0, 1, frames)
    endpoints = noise_for_seeds(range(seed, seed + 2 * rows), latent_dim)  # (2 * rows, D)
    walk = INTERPOLATIONS[mode]
    noise = torch.cat([walk(endpoints[2 * r], endpoints[2 * r + 1], weights) for r in range(rows)])
    embeddings = None
    labels = None if attributes is None else attributes.repeat_interleave(frames, dim=0)  # (rows * frames, A)
    if start_labels is not None:
        end_labels = start_labels if end_labels is None else end_labels
        with torch.no_grad():
            table = generator.embed.weight.detach().float().cpu()
            embeddings = torch.cat([lerp(table[start], table[end], weights)
                                    for start, end in zip(start_labels, end_labels, strict=True)])
    pictures = generate(generator, noise, labels, embeddings)  # (rows * frames, C, H, W)
    return pictures.view(rows, frames, *pictures.shape[1:])


ATTRIBUTE_SEED_OFFSET = 1 << 40


def draw_attributes(prior: torch.Tensor, seeds: Sequence[int], fixed: dict[int, int] | None = None) -> torch.Tensor:
    """Return attributes (N, A) in {0, 1} for an attribute-conditioned generator: row i is a real face's
    vector from ``prior`` (N_prior, A), picked by a generator seeded from ``seeds[i]`` (a stream apart from
    the noise's: seeds are below 2**32, so ``seed + ATTRIBUTE_SEED_OFFSET`` is no image's noise seed).

    ``fixed`` maps attribute columns to the value asked for (1 with, 0 without): the row is drawn among the
    prior's vectors that agree with all of them, so the rest comes in a mix real faces have (asking for a
    beard draws men); when none agrees, among those that disagree least, and the asked-for values are set.
    """
    fixed = fixed or {}
    prior = prior.cpu()
    if prior.shape[0] == 0:
        raise ValueError("the generator keeps no attribute vectors to draw from")
    mismatches = torch.zeros(prior.shape[0], dtype=torch.int64)
    for column, value in fixed.items():
        mismatches += (prior[:, column] != value).long()
    candidates = torch.nonzero(mismatches == mismatches.min()).flatten()
    rows = []
    for seed in seeds:
        rng = torch.Generator().manual_seed(int(seed) + ATTRIBUTE_SEED_OFFSET)
        pick = torch.randint(candidates.numel(), (1,), generator=rng)
        row = prior[candidates[pick]].clone().view(-1)
        for column, value in fixed.items():
            row[column] = value
        rows.append(row)
    return torch.stack(rows).float() if rows else torch.empty(0, prior.shape[1])


LATENTS_TENSOR = "latents"
ATTRIBUTES_TENSOR = "attributes"


def save_latents(path, noise: torch.Tensor, seeds: Sequence[int] | None = None,
                 attributes: torch.Tensor | None = None, attribute_names: Sequence[str] = ()) -> None:
    """Write latents (N, D) as a safetensors file (tensor ``latents``; seeds in the metadata when known), with
    a conditioned generator's attribute inputs (N, A) in [0, 1] as tensor ``attributes`` when given (their
    names in the metadata)."""
    from pathlib import Path

    from latentctl import files

    metadata = {"format": "latentctl.latents"}
    tensors = {LATENTS_TENSOR: noise.detach().float().cpu().contiguous()}
    if seeds is not None:
        metadata["seeds"] = ",".join(str(int(seed)) for seed in seeds)
    if attributes is not None:
        tensors[ATTRIBUTES_TENSOR] = attributes.detach().float().cpu().contiguous()
        metadata["attributes"] = ",".join(attribute_names)
    files.save_tensors(Path(path), tensors, metadata=metadata)


def load_saved_attributes(path, labels: Sequence[str]) -> torch.Tensor | None:
    """The attribute inputs (N, A) a latents file holds (``invert`` writes them for a generator conditioned on
    attributes), or None when it holds none; inputs of other attributes than ``labels`` are a LatentctlError."""
    from pathlib import Path

    from safetensors import safe_open

    from latentctl import files
    from latentctl.errors import LatentctlError

    attributes = files.load_tensors(Path(path)).get(ATTRIBUTES_TENSOR)
    if attributes is None:
        return None
    with safe_open(str(path), framework="pt") as handle:
        names = (handle.metadata() or {}).get("attributes", "")
    if names.split(",") != list(labels) or attributes.ndim != 2 or attributes.shape[1] != len(labels):
        raise LatentctlError(f"{path} holds attribute inputs for {names or 'other attributes'}, the model takes "
                             f"{', '.join(labels)}", hint="invert the photos again with this --model")
    return attributes.float().clamp(0, 1)


def load_latents(path, latent_dim: int) -> torch.Tensor:
    """Read latents (N, latent_dim) written by :func:`save_latents`; anything else is a LatentctlError."""
    from pathlib import Path

    from latentctl import files
    from latentctl.errors import LatentctlError

    path = Path(path)
    if not path.is_file():
        raise LatentctlError(f"no latents file at {path}",
                             hint="write one with 'latentctl sample --save-latents FILE'")
    tensors = files.load_tensors(path)
    latents = tensors.get(LATENTS_TENSOR)
    if latents is None or latents.ndim != 2 or latents.shape[0] == 0:
        raise LatentctlError(f"{path} holds no latents (a safetensors file with a tensor 'latents' of shape "
                             "(N, D))", hint="write one with 'latentctl sample --save-latents FILE'")
    if latents.shape[1] != latent_dim:
        raise LatentctlError(f"{path} holds {latents.shape[1]}-dimensional latents, the model takes {latent_dim}",
                             hint="save them from the same model with 'latentctl sample --save-latents FILE'")
    if not torch.isfinite(latents).all():
        raise LatentctlError(f"{path} holds latents that are not finite numbers", hint="regenerate the file")
    return latents.float()
