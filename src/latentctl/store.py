"""The model folder format: ``model.safetensors`` (weights only) + ``config.json``, written atomically.

As with Hugging Face's model mixins, a folder is rebuilt from its config alone: ``config.json`` names an
architecture (models.configs), whose registered network is built from its config and then strictly loaded
with the weights; ``save_model`` and ``load_model`` are inverses. Training state sits beside it in
``training_state.safetensors`` + ``training_state.json``: tensors and JSON, never pickle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latentctl import __version__
from latentctl.errors import LatentctlError
from latentctl.files import load_tensors, read_json, save_tensors, write_json
from latentctl.models.configs import NETWORKS, NetworkConfig, network_config

FORMAT = "latentctl.model"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
STATE_TENSORS_FILE = "training_state.safetensors"
STATE_JSON_FILE = "training_state.json"

# kind -> (human description, the command that trains one)
KINDS = {
    "cgan": ("a conditional GAN", "latentctl train cgan"),
    "gan": ("an unconditional GAN", "latentctl train gan"),
    "classifier": ("an attribute classifier", "latentctl train classifier"),
    "encoder": ("a latent encoder", "latentctl train encoder"),
}


@dataclass
class ModelConfig:
    """What ``config.json`` holds: the network's config, which rebuilds it, and what using it needs.

    The image size, channels, noise size and number of labels are the network's; config.json repeats them
    at its top level for readers without latentctl, and reading it checks that they agree.
    """

    kind: str
    network: NetworkConfig  # e.g. GANConfig(...); config.json's "architecture" is its name and fields
    labels: list[str]
    # Pixels are stored as (x - mean) / std per channel; generators emit [-1, 1], i.e. mean = std = 0.5.
    normalization: dict[str, list[float]] = field(default_factory=lambda: {"mean": [0.5], "std": [0.5]})
    training: dict[str, Any] = field(default_factory=dict)
    latentctl_version: str = __version__

    @property
    def architecture(self) -> dict[str, Any]:
        """config.json's ``architecture``: the network's architecture name, then its config's fields."""
        return {"name": self.network.architecture, **self.network.to_dict()}

    @property
    def image_size(self) -> int:
        return self.network.image_size

    @property
    def channels(self) -> int:
        return self.network.channels

    @property
    def latent_dim(self) -> int:
        """A generator's noise size; 0 for a classifier."""
        return getattr(self.network, "latent_dim", 0)

    @property
    def conditioned_on_attributes(self) -> bool:
        """Whether a generator takes attributes (``train gan --condition attributes``) besides its noise."""
        return self.kind == "gan" and bool(getattr(self.network, "num_attributes", 0))

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": self.kind,
                "latentctl_version": self.latentctl_version, "architecture": self.architecture,
                "image_size": self.image_size, "channels": self.channels, "latent_dim": self.latent_dim,
                "labels": self.labels, "normalization": self.normalization, "training": self.training}

    @classmethod
    def from_json(cls, document: Any, source: Path) -> ModelConfig:
        """Validate a parsed ``config.json``; raise LatentctlError naming the first problem."""
        def bad(problem: str) -> LatentctlError:
            return LatentctlError(f"{source} is not a valid latentctl model config: {problem}",
                                  hint="it was edited or comes from another tool: restore the original, or retrain")

        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise bad(f"missing \"format\": \"{FORMAT}\"")
        if document.get("format_version") != FORMAT_VERSION:
            raise LatentctlError(f"{source} uses model format version {document.get('format_version')}, "
                                 f"this latentctl reads version {FORMAT_VERSION}",
                                 hint="upgrade latentctl (pip install -U latentctl)")
        expected_types = {"kind": str, "architecture": dict, "image_size": int, "channels": int,
                          "latent_dim": int, "labels": list, "normalization": dict, "training": dict}
        for key, kind in expected_types.items():
            if not isinstance(document.get(key), kind) or isinstance(document.get(key), bool):
                raise bad(f"\"{key}\" must be a {kind.__name__}")
        if document["kind"] not in KINDS:
            raise bad(f"unknown kind {document['kind']!r} (known: {', '.join(KINDS)})")
        if not all(isinstance(label, str) for label in document["labels"]):
            raise bad("\"labels\" must be a list of strings")
        norm = document["normalization"]
        for key in ("mean", "std"):
            values = norm.get(key)
            if (not isinstance(values, list) or len(values) not in (1, document["channels"])
                    or not all(isinstance(v, (int, float)) for v in values)):
                raise bad(f"\"normalization.{key}\" must list one number per channel")
        if any(v <= 0 for v in norm["std"]):
            raise bad("\"normalization.std\" must be positive")
        try:
            network = network_config(document["architecture"])
        except (TypeError, ValueError) as error:
            raise LatentctlError(f"{source} describes an invalid architecture ({error})",
                                 hint="the config was edited or comes from another tool") from None
        config = cls(kind=document["kind"], network=network, labels=document["labels"],
                     normalization={"mean": list(norm["mean"]), "std": list(norm["std"])},
                     training=document["training"],
                     latentctl_version=str(document.get("latentctl_version", "unknown")))
        # (what config.json states, what its architecture implies)
        pairs = {"image size": (document["image_size"], config.image_size),
                 "channels": (document["channels"], config.channels),
                 "latent size": (document["latent_dim"], config.latent_dim),
                 "label count": (len(document["labels"]), network.num_labels)}
        differing = [f"{what} {stated} against the architecture's {implied}"
                     for what, (stated, implied) in pairs.items() if stated != implied]
        if config.kind not in network.kinds:
            differing.insert(0, f"kind {config.kind} against the architecture's {' or '.join(network.kinds)}")
        if differing:
            raise LatentctlError(f"{source} contradicts itself ({'; '.join(differing)})",
                                 hint="restore the original config")
        return config


# ------------------------------------------------------------------------------------------- model folders

def save_model(directory: str | Path, config: ModelConfig, module: Any) -> None:
    """Write ``module``'s weights and ``config`` as a model folder; config last, so the folder is a model
    only once its weights are in place."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_tensors(directory / WEIGHTS_FILE, module.state_dict(),
                 metadata={"format": FORMAT, "kind": config.kind})
    write_json(directory / CONFIG_FILE, config.to_json())


def read_config(directory: Path, kind: str | tuple[str, ...] | None = None, option: str = "--model") -> ModelConfig:
    """Read and validate a model folder's config, checking its kind when ``kind`` (one or several) is given.

    ``option`` is the command's flag for the folder, named in hints."""
    kinds = (kind,) if isinstance(kind, str) else kind
    if kinds is not None and any(name not in KINDS for name in kinds):
        raise ValueError(f"unknown model kind in {kinds!r} (known: {', '.join(KINDS)})")
    directory = Path(directory)
    if not directory.exists():
        raise LatentctlError(f"no model at {directory}",
                             hint=_train_hint(kinds[0], option) if kinds else "check the path")
    if not (directory / CONFIG_FILE).is_file():
        raise LatentctlError(f"{directory} is not a latentctl model folder (no {CONFIG_FILE})",
                             hint="a model folder holds model.safetensors and config.json")
    config = ModelConfig.from_json(read_json(directory / CONFIG_FILE), directory / CONFIG_FILE)
    if kinds is not None and config.kind not in kinds:
        needed = " or ".join(f"{KINDS[name][0]} ({name})" for name in kinds)
        commands = " or ".join(f"'{KINDS[name][1]}'" for name in kinds)
        raise LatentctlError(f"{directory} holds {KINDS[config.kind][0]} ({config.kind}), "
                             f"this command needs {needed}",
                             hint=f"pass {option} with {'an' if kinds[0][0] in 'aeiou' else 'a'} "
                                  f"{'/'.join(kinds)} model, e.g. one made by {commands}")
    return config


def load_state_strict(module: Any, tensors: dict[str, Any], source: Path) -> None:
    """Load ``tensors`` into ``module``, refusing any missing, extra or mis-shaped tensor."""
    problems = state_problems(module, tensors)
    if problems:
        raise LatentctlError(f"{source} does not match its config: {'; '.join(problems)}",
                             hint="the weights and config.json come from different models")
    module.load_state_dict(tensors, strict=True)


def state_problems(module: Any, tensors: dict[str, Any]) -> list[str]:
    """Return why ``tensors`` cannot be ``module``'s state dict: missing, extra or mis-shaped tensors (or [])."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = [f"{name} {tuple(tensors[name].shape)} != {tuple(expected[name].shape)}"
                  for name in expected if name in tensors and tensors[name].shape != expected[name].shape]
    return ([f"missing {_few(missing)}"] if missing else []) + \
           ([f"unexpected {_few(unexpected)}"] if unexpected else []) + \
           ([f"wrong shape {_few(mismatched)}"] if mismatched else [])


def _few(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _train_hint(kind: str, option: str = "--model") -> str:
    return f"train one with '{KINDS[kind][1]}', or pass {option} PATH"


# ----------------------------------------------------------------------------------- optimizer and RNG state

def optimizer_to_tensors(optimizer: Any, prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split an optimizer's state into tensors (for safetensors) and plain JSON (hyper-parameters)."""
    import torch

    state = optimizer.state_dict()
    tensors: dict[str, Any] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_tensors(optimizer: Any, tensors: dict[str, Any], document: dict[str, Any],
                           prefix: str) -> None:
    """Inverse of :func:`optimizer_to_tensors`: restore the optimizer exactly."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            index, name = key[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(index), {})[name] = value
    for index, entries in document.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(entries)
    # JSON has no tuples: give back the ones optimizers keep (Adam's betas), leave the params index lists
    groups = [{key: tuple(value) if isinstance(value, list) and key != "params" else value
               for key, value in group.items()} for group in document["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def load_model(directory: Path, kind: str | tuple[str, ...], device: Any = "cpu",
               option: str = "--model") -> tuple[Any, ModelConfig]:
    """Rebuild a model from its folder (config first, then strictly loaded weights), in eval mode.

    ``option`` is the command's flag for the folder, named in hints."""
    directory = Path(directory)
    config = read_config(directory, kind, option)
    module = build_network(config.network)
    load_state_strict(module, load_tensors(directory / WEIGHTS_FILE), directory / WEIGHTS_FILE)
    return module.to(device).eval(), config


def build_network(network: NetworkConfig) -> Any:
    """Return a new network (fresh weights) of the architecture ``network`` configures."""
    from latentctl.models import classifier, dcgan, encoder, pytorch_dcgan, seed  # noqa: F401 (importing registers them)

    return NETWORKS[network.architecture](network)
