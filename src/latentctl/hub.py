"""Hugging Face Hub push and pull: the Hub is one more place to keep a model folder.

``push`` uploads the weights, config, a sample image and a model card in one commit; ``pull`` downloads
only ``model.safetensors`` and ``config.json`` (nothing is unpickled or executed) into huggingface_hub's
cache and registers them as ``user/repo``, so ``--model user/repo`` works offline from then on. Every
call to the Hub goes through ``_api()`` (tests put a stand-in there); the token stays huggingface_hub's
business: latentctl only checks that one exists before pushing, and never passes, prints or writes it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentctl import __version__, files, registry, store
from latentctl.errors import LatentctlError, first_line
from latentctl.models.configs import PytorchDCGANConfig

PULLED_FILES = (store.WEIGHTS_FILE, store.CONFIG_FILE)  # all that pull downloads, and all it reads
SAMPLE_FILE = "sample.png"
CARD_FILE = "README.md"
SAMPLE_SEEDS = 16  # images in a card's sample: seeds 0-15, or 8 per label (one row each) for digits
# Hub datasets of the data latentctl trains on, for the card's metadata (synthetic sets have none)
HUB_DATASETS = {"mnist": "ylecun/mnist", "celeba": "flwrlabs/celeba"}
LOGIN_HINT = "set HF_TOKEN to a token with write access, or run 'hf auth login'"
READ_HINT = "set HF_TOKEN to a token that can read it, or run 'hf auth login'"


def not_found_message(what: str) -> str:
    """The one wording of a repository the Hub says is not there, for models and datasets alike."""
    return f"{what} does not exist on the Hub, or it is private and your token cannot see it"


def gated_message(what: str, url: str) -> str:
    """The one wording of a gated repository, for models and datasets alike."""
    return f"{what} is gated: accept its conditions on {url} first"


@dataclass
class Pushed:
    """What ``push`` uploaded, and where."""

    model: Path  # the folder pushed
    repo_id: str
    revision: str
    url: str  # of the commit
    commit: str | None
    files: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"model": str(self.model), "repo_id": self.repo_id, "revision": self.revision, "url": self.url,
                "commit": self.commit, "files": self.files}


@dataclass
class Pulled:
    """A model pulled into the Hub cache and registered under ``name``."""

    name: str
    path: Path  # the snapshot folder in the Hub cache
    repo_id: str
    revision: str
    commit: str
    config: store.ModelConfig

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "repo_id": self.repo_id, "revision": self.revision, "commit": self.commit,
                "path": str(self.path), "kind": self.config.kind}


def _api() -> Any:
    """Return the huggingface_hub ``HfApi`` that every call to the Hub goes through."""
    from huggingface_hub import HfApi

    return HfApi(library_name="latentctl", library_version=__version__)


def split_revision(value: str) -> tuple[str, str | None]:
    """Split ``user/repo@revision`` into the repository id and the revision (None without one)."""
    repo_id, _, revision = value.partition("@")
    return repo_id, revision or None


def check_repo_id(repo_id: str) -> None:
    """Raise a LatentctlError unless ``repo_id`` has the form ``user/repo`` that the Hub accepts."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise LatentctlError(f"{repo_id!r} is not a Hub repository id ({str(error).split(':')[0]})",
                             hint="write it as user/repo, e.g. ada/celeba-faces") from None
    if "/" not in repo_id:
        raise LatentctlError(f"{repo_id!r} is not a Hub repository id: it needs the owner, as in user/repo",
                             hint="write it as user/repo, e.g. ada/celeba-faces")


# ------------------------------------------------------------------------------------------------- push

def push(model_dir: Path, repo_id: str, *, private: bool = False, revision: str | None = None,
         message: str | None = None) -> Pushed:
    """Upload a model folder to the Hub repository ``repo_id`` (created if needed) in one commit.

    The folder is checked first (it must load); ``revision`` names a branch, created from main if new.
    ``private`` applies only when the repository is created.
    """
    from huggingface_hub import CommitOperationAdd

    check_repo_id(repo_id)
    model_dir = Path(model_dir)
    if not model_dir.exists():
        raise LatentctlError(f"no model at {model_dir}",
                             hint="give a model folder, or a name that 'latentctl models list' shows")
    module, config = store.load_model(model_dir, tuple(store.KINDS))
    _check_online(f"push to {repo_id}")
    if not _logged_in():
        raise LatentctlError(f"pushing to {repo_id} needs a Hugging Face token, and none is set", hint=LOGIN_HINT)
    sample = sample_png(module, config) if config.kind != "classifier" else None
    card = model_card(config, repo_id, sample_file=SAMPLE_FILE if sample else None)
    operations = [CommitOperationAdd(store.WEIGHTS_FILE, str(model_dir / store.WEIGHTS_FILE)),
                  CommitOperationAdd(store.CONFIG_FILE, str(model_dir / store.CONFIG_FILE)),
                  CommitOperationAdd(CARD_FILE, card.encode("utf-8"))]
    if sample is not None:
        operations.append(CommitOperationAdd(SAMPLE_FILE, sample))
    files = [operation.path_in_repo for operation in operations]
    api = _api()
    with _hub_errors(repo_id, revision, hint=LOGIN_HINT):
        api.create_repo(repo_id, private=True if private else None, exist_ok=True)
        if revision not in (None, "main"):
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.create_commit(repo_id, operations, revision=revision,
                                 commit_message=message or f"Upload a latentctl {config.kind} model")
    url = str(getattr(info, "commit_url", "") or f"https://huggingface.co/{repo_id}")
    return Pushed(model_dir, repo_id, revision or "main", url, getattr(info, "oid", None), files)


def sample_png(generator: Any, config: store.ModelConfig) -> bytes:
    """Return a PNG grid of the generator's images of seeds 0-15 (digits: 8 of each label, one row per label;
    a face model conditioned on attributes: the attributes ``sample`` draws for those seeds)."""
    import torch

    from latentctl import images
    from latentctl.latent.sampling import draw_attributes, generate, noise_for_seeds

    if config.conditioned_on_attributes:
        labels, columns = draw_attributes(generator.attribute_prior, range(SAMPLE_SEEDS)), 4
    elif config.labels:
        per_label = SAMPLE_SEEDS // 2
        labels = torch.arange(len(config.labels)).repeat_interleave(per_label)
        columns = per_label
    else:
        labels, columns = None, 4
    count = SAMPLE_SEEDS if labels is None else labels.shape[0]
    pictures = generate(generator, noise_for_seeds(range(count), config.latent_dim), labels)
    buffer = io.BytesIO()
    images.to_pil(pictures, nrow=columns, scale=2 if config.image_size < 64 else 1).save(buffer, format="PNG")
    return buffer.getvalue()


def model_card(config: store.ModelConfig, repo_id: str, sample_file: str | None = None) -> str:
    """Return the README.md of a pushed model: Hub metadata, what it is, how it was trained, how to use it."""
    from huggingface_hub import ModelCardData

    training = config.training
    dataset = training.get("dataset") if isinstance(training.get("dataset"), dict) else {}
    hub_dataset = None if dataset.get("synthetic") else HUB_DATASETS.get(str(dataset.get("name")))
    tags = ["latentctl", "pytorch", "safetensors", *_kind_tags(config)]
    metadata = ModelCardData(library_name="latentctl", tags=tags, datasets=[hub_dataset] if hub_dataset else None,
                             pipeline_tag="image-classification" if config.kind == "classifier"
                             else "unconditional-image-generation")
    lines = ["---", metadata.to_yaml(), "---", "", f"# {repo_id}", "", _summary(config), ""]
    if sample_file:
        lines += [f"![Samples from this model, as latentctl sample draws seeds 0 and up]({sample_file})", ""]
    lines += ["## How it was trained", "", *_training_lines(config), "", "## Use it", "",
              "With [latentctl](https://pypi.org/project/latentctl/) (`pip install latentctl`), name the "
              "repository wherever a command takes a model; it is downloaded on first use and works "
              "offline afterwards:", "", "```bash", *_usage(config, repo_id), "```", "",
              "From Python:", "", "```python", "from latentctl import hub, store", "",
              f"pulled = hub.pull(\"{repo_id}\")",
              f"model, config = store.load_model(pulled.path, \"{config.kind}\")  # eval mode, on the CPU",
              "```", "", "## Files", "",
              f"- `{store.WEIGHTS_FILE}`: the weights (safetensors: no pickle, no code)",
              f"- `{store.CONFIG_FILE}`: the architecture, image format, labels and a training summary "
              f"(latentctl model format {store.FORMAT_VERSION})"]
    if sample_file:
        lines.append(f"- `{sample_file}`: the picture above")
    return "\n".join(lines) + "\n"


def _kind_tags(config: store.ModelConfig) -> list[str]:
    name = str(config.architecture.get("name"))
    if config.kind == "classifier":
        return ["image-classification", "multi-label-classification", name]
    if config.conditioned_on_attributes:
        return ["gan", "dcgan", name, "conditional-gan", "attribute-conditional"]
    return ["gan", "dcgan", name] + (["conditional-gan", "class-conditional"] if config.kind == "cgan"
                                     else ["unconditional-image-generation"])


def _summary(config: store.ModelConfig) -> str:
    colour = "RGB" if config.channels == 3 else ("grayscale" if config.channels == 1 else f"{config.channels}-channel")
    size = f"{config.image_size}x{config.image_size} {colour}"
    if config.kind == "classifier":
        return (f"An attribute classifier: the probability of each of {len(config.labels)} attributes "
                f"({', '.join(config.labels[:3])}, ...) in a {size} image.")
    what = (f"A conditional GAN generator: {size} images of a chosen label ({', '.join(config.labels)}) from "
            if config.kind == "cgan" else f"An unconditional GAN generator: {size} images from ")
    if config.conditioned_on_attributes:
        what = (f"A GAN generator conditioned on {len(config.labels)} face attributes "
                f"({', '.join(config.labels[:3])}, ...): {size} images of chosen attributes from ")
    return what + f"{config.latent_dim}-d Gaussian noise (architecture `{config.architecture.get('name')}`)."


def _training_lines(config: store.ModelConfig) -> list[str]:
    """Rows of a Markdown table from config.json's training summary (imported models say where from)."""
    training = config.training
    imported = training.get("imported")
    if isinstance(imported, dict):
        examples = imported.get("arch") == PytorchDCGANConfig.architecture
        origin = "pytorch/examples' DCGAN" if examples else "seed-project"
        return [f"Imported by `latentctl models import` from the {origin} checkpoint `{imported.get('file')}` "
                f"(sha256 `{str(imported.get('sha256', ''))[:16]}`), architecture `{imported.get('arch')}`: "
                "trained outside latentctl; its training is not recorded."]
    if not training:
        return ["Not recorded."]
    dataset = training.get("dataset") if isinstance(training.get("dataset"), dict) else {}
    rows = [("dataset", f"{dataset.get('name', 'unknown')}"
             + (f", {dataset['images']:,} images" if isinstance(dataset.get("images"), int) else "")
             + (" (synthetic: a stand-in for trying latentctl out, not a real dataset)" if dataset.get("synthetic")
                else "") + (f", sha256 `{dataset['sha256']}`" if dataset.get("sha256") else "")),
            ("epochs", f"{training.get('epochs')}" + ("" if training.get("complete", True) else
                                                      " (interrupted: not the planned number)")),
            ("steps", training.get("steps")), ("images seen", training.get("images_seen")),
            ("training time", f"{training['seconds'] / 60:.1f} min" if isinstance(training.get("seconds"), (int, float))
             else None),
            ("device", training.get("device")), ("torch", training.get("torch")),
            ("options", ", ".join(f"{key} {value}" for key, value in training.get("options", {}).items())
             if isinstance(training.get("options"), dict) else None),
            ("final epoch", ", ".join(f"{key} {value}" for key, value in training.get("final", {}).items())
             if isinstance(training.get("final"), dict) else None),
            ("FID (KID) by epoch", "; ".join(f"epoch {entry.get('epoch')}: {entry.get('fid')} ({entry.get('kid')}, "
                                             f"{entry.get('fid_images')} images)"
                                             for entry in training["fid"] if isinstance(entry, dict))
             if isinstance(training.get("fid"), list) else None)]
    return ["| | |", "|---|---|"] + [f"| {key} | {value} |" for key, value in rows if value not in (None, "")]


def _usage(config: store.ModelConfig, repo_id: str) -> list[str]:
    if config.kind == "classifier":
        return [f"latentctl classify --classifier {repo_id} face.jpg"]
    if config.kind == "cgan":
        label = config.labels[min(7, len(config.labels) - 1)]
        return [f"latentctl sample --model {repo_id} --per-digit 8 grid.png",
                f"latentctl interpolate --model {repo_id} --digit {label} walk.gif"]
    if config.conditioned_on_attributes:
        wanted = next((name for name in ("Eyeglasses", "Smiling") if name in config.labels), config.labels[0])
        return [f"latentctl sample --model {repo_id} --n 16 --with {wanted} faces.png",
                f"latentctl interpolate --model {repo_id} --with {wanted} walk.gif"]
    return [f"latentctl sample --model {repo_id} --n 16 faces.png",
            f"latentctl interpolate --model {repo_id} walk.gif"]


# ------------------------------------------------------------------------------------------------- pull

def pull(repo_id: str, revision: str | None = None, name: str | None = None) -> Pulled:
    """Download a model's weights and config into the Hub cache, check them and register the model.

    Registered as ``name``, by default ``repo_id`` (``repo_id@revision`` with a revision). Offline
    (``HF_HUB_OFFLINE=1`` or no network) the cached snapshot is used when there is one.
    """
    check_repo_id(repo_id)
    where = f"{repo_id}@{revision}" if revision else repo_id
    api = _api()
    with _hub_errors(repo_id, revision):
        snapshot = Path(api.snapshot_download(repo_id, revision=revision, allow_patterns=list(PULLED_FILES)))
    missing = [file for file in PULLED_FILES if not (snapshot / file).is_file()]
    if missing:
        raise LatentctlError(f"{where} is not a latentctl model: it has no {' and no '.join(missing)}",
                             hint="pull a repository made by 'latentctl hub push'")
    document = files.read_json(snapshot / store.CONFIG_FILE)
    if not isinstance(document, dict) or document.get("format") != store.FORMAT:
        raise LatentctlError(f"{where} is not a latentctl model: its {store.CONFIG_FILE} does not say "
                             f"\"format\": \"{store.FORMAT}\"", hint="pull a repository made by 'latentctl hub push'")
    _, config = store.load_model(snapshot, tuple(store.KINDS))  # the weights must load, strictly
    hub = {"repo_id": repo_id, "revision": revision or "main", "commit": snapshot.name}
    registered = registry.register(snapshot, "hub", name=name or where, hub=hub)
    return Pulled(registered, snapshot, repo_id, revision or "main", snapshot.name, config)


# ----------------------------------------------------------------------------------------------- errors

def _logged_in() -> bool:
    from huggingface_hub import get_token

    return get_token() is not None


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _check_online(action: str) -> None:
    if _offline():
        raise LatentctlError(f"cannot {action}: HF_HUB_OFFLINE is set", hint="unset HF_HUB_OFFLINE and try again")


@contextmanager
def _hub_errors(repo_id: str, revision: str | None, hint: str = READ_HINT) -> Iterator[None]:
    """Turn huggingface_hub's exceptions (offline, unreachable, not found, refused) into one-line errors;
    ``hint`` says which token would do (read for a pull, write for a push)."""
    from huggingface_hub import errors

    where = f"{repo_id}@{revision}" if revision else repo_id
    try:
        yield
    except errors.LocalEntryNotFoundError:  # not cached, and offline or the Hub unreachable
        if _offline():
            raise LatentctlError(f"{where} is not in the Hub cache, and HF_HUB_OFFLINE is set",
                                 hint=f"unset HF_HUB_OFFLINE and pull it once while online: "
                                      f"latentctl hub pull {where}") from None
        raise LatentctlError(f"cannot reach the Hugging Face Hub to get {where}, and it is not in the Hub cache",
                             hint="check the network connection (and HF_ENDPOINT if you set it)") from None
    except errors.OfflineModeIsEnabled:
        raise LatentctlError(f"cannot reach {where}: HF_HUB_OFFLINE is set",
                             hint="unset HF_HUB_OFFLINE and try again") from None
    except errors.GatedRepoError:
        raise LatentctlError(gated_message(repo_id, f"https://huggingface.co/{repo_id}"), hint=hint) from None
    except errors.RepositoryNotFoundError:
        raise LatentctlError(not_found_message(repo_id),
                             hint=f"check the name; for a private repository, {hint}") from None
    except errors.RevisionNotFoundError:
        raise LatentctlError(f"{repo_id} has no revision {revision}",
                             hint=f"see the branches and tags on https://huggingface.co/{repo_id}") from None
    except errors.HfHubHTTPError as error:
        status = getattr(getattr(error, "response", None), "status_code", None)
        if status in (401, 403):
            raise LatentctlError(f"the Hub refused access to {repo_id} (HTTP {status})", hint=hint) from None
        raise LatentctlError(f"the Hub failed on {where}: {first_line(error)}",
                             hint="try again later; rerun with --debug for details") from None
    except Exception as error:
        if not _network_error(error):
            raise
        raise LatentctlError(f"cannot reach the Hugging Face Hub for {where} ({first_line(error)})",
                             hint="check the network connection (and HF_ENDPOINT if you set it)") from None


def _network_error(error: BaseException) -> bool:
    """Whether ``error`` comes from the network (whichever HTTP library this huggingface_hub uses)."""
    if isinstance(error, (ConnectionError, TimeoutError)):
        return True
    return any(kind.__module__.split(".")[0] in ("httpx", "httpx2", "requests", "urllib3")
               for kind in type(error).__mro__)
