"""latentctl: controllable image generation with GANs, from the command line and from Python.

The names below are the public Python API (docs/python-api.md): one call per command. They are imported on
first use, so ``import latentctl`` (and the CLI's ``--help``) stays free of torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "LatentctlError": "latentctl.errors",
    "UsageError": "latentctl.errors",
    "datasets": "latentctl.data.datasets",  # a module: download, check, synth, ...
    "start": "latentctl.train.runs",
    "RunResult": "latentctl.train.runs",
    "CGANRunOptions": "latentctl.train.options",
    "GANRunOptions": "latentctl.train.options",
    "ClassifierRunOptions": "latentctl.train.options",
    "EncoderRunOptions": "latentctl.train.options",
    "sample": "latentctl.latent.generation",
    "SampleOptions": "latentctl.latent.generation",
    "interpolate": "latentctl.latent.generation",
    "InterpolateOptions": "latentctl.latent.generation",
    "SteeringSession": "latentctl.latent.session",
    "SteerOptions": "latentctl.latent.session",
    "steer_faces": "latentctl.latent.session",
    "list_attributes": "latentctl.latent.attributes",
    "discover_directions": "latentctl.latent.discover",
    "DiscoverOptions": "latentctl.latent.discover",
    "invert": "latentctl.latent.inversion",
    "InvertOptions": "latentctl.latent.inversion",
    "edit_photo": "latentctl.latent.editing",
    "classify": "latentctl.eval.reading",
    "evaluate_steer": "latentctl.eval.steering",
    "SteerEvalOptions": "latentctl.eval.steering",
    "evaluate_invert": "latentctl.eval.inversion",
    "InvertEvalOptions": "latentctl.eval.inversion",
    "evaluate_fid": "latentctl.eval.fid",
    "FIDOptions": "latentctl.eval.fid",
    "evaluate_separability": "latentctl.eval.separability",
    "SeparabilityOptions": "latentctl.eval.separability",
    "load_model": "latentctl.store",
    "save_model": "latentctl.store",
    "resolve_model": "latentctl.lookup",
    "push": "latentctl.hub",
    "pull": "latentctl.hub",
}
__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'latentctl' has no attribute {name!r}")
    module = importlib.import_module(_PUBLIC[name])
    value = module if module.__name__.endswith(f".{name}") else getattr(module, name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
