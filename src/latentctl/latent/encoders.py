"""Which latent encoder belongs to which face generator, and finding it.

An encoder (``latentctl train encoder``) is a model folder of kind "encoder" whose config.json records the
generator it was trained on: its folder and the sha256 of its weights. The hash decides: an encoder is used
only with the generator whose weights it learned to invert. By convention it lives beside its generator,
in the folder named after it with ``-encoder`` appended (``models/gan-celeba`` -> ``models/gan-celeba-encoder``),
where ``invert`` and ``edit`` look for it when no ``--encoder`` is given.

Importing this module loads no torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latentctl import console, lookup, store
from latentctl.errors import LatentctlError

if TYPE_CHECKING:
    import torch

SUFFIX = "-encoder"


def default_encoder_dir(model_dir: Path) -> Path:
    """Where the encoder of the generator in ``model_dir`` goes by default: beside it, named after it."""
    model_dir = Path(model_dir)
    return model_dir.parent / f"{model_dir.name}{SUFFIX}"


def generator_record(model_dir: Path) -> dict[str, str]:
    """What an encoder records of its generator: the folder and its weights' sha256."""
    from latentctl.files import file_sha256

    return {"path": str(Path(model_dir).resolve()), "sha256": file_sha256(Path(model_dir) / store.WEIGHTS_FILE)}


@dataclass
class FoundEncoder:
    """An encoder loaded for a generator, or none (``module`` None) with the reason in ``note``."""

    module: torch.nn.Module | None
    path: Path | None
    note: str | None = None


def find_encoder(model_dir: Path, config: store.ModelConfig, encoder: str | Path | None = None, *,
                 use: bool = True, device: Any = "cpu") -> FoundEncoder:
    """Return the encoder to start ``invert`` from for the generator in ``model_dir``: ``encoder`` (a folder,
    registered name or Hub repo), which must have been trained on this very generator, or without it the one
    at ``default_encoder_dir``, used when it is there and fits (else left out with a note). ``use=False``:
    none."""
    if not use:
        return FoundEncoder(None, None)
    given = encoder is not None
    encoder_dir = lookup.resolve_model(encoder, "") if given else default_encoder_dir(model_dir)
    if not given and not (encoder_dir / store.CONFIG_FILE).is_file():
        return FoundEncoder(None, None)
    module, encoder_config = store.load_model(encoder_dir, "encoder", device, option="--encoder")
    try:
        check_encoder(encoder_config, encoder_dir, config, model_dir)
    except LatentctlError as error:
        if given:
            raise
        note = f"not using {encoder_dir}: {error.message}"
        console.warn(note)
        return FoundEncoder(None, None, note)
    return FoundEncoder(module, encoder_dir)


def check_encoder(encoder_config: store.ModelConfig, encoder_dir: Path, config: store.ModelConfig,
                  model_dir: Path) -> None:
    """Refuse an encoder trained on another generator than the one in ``model_dir`` (by its weights' hash)."""
    recorded = encoder_config.training.get("generator") or {}
    hint = f"train one for it: 'latentctl train encoder --model {model_dir}', or leave --encoder out"
    if recorded.get("sha256") != generator_record(model_dir)["sha256"]:
        raise LatentctlError(f"{encoder_dir} is an encoder for another generator "
                             f"({recorded.get('path', 'unknown')}), not {model_dir}", hint=hint)
    shape = (encoder_config.image_size, encoder_config.channels, encoder_config.latent_dim)
    if shape != (config.image_size, config.channels, config.latent_dim):  # same weights, edited config
        raise LatentctlError(f"{encoder_dir} reads {shape[0]}px images into {shape[2]} latents, the generator "
                             f"draws {config.image_size}px from {config.latent_dim}", hint=hint)
