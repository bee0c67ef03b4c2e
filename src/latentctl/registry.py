"""The local model registry: a name for every model folder latentctl knows, wherever the folder lives.

A name is a folder of ``$LATENTCTL_HOME/models``, or an entry of ``$LATENTCTL_HOME/registry.json`` (folders
elsewhere, and Hub models named ``user/repo[@revision]``). The file only maps names to folders; it is validated
on every read, written atomically, and changed under a lock so that runs side by side keep each other's entries
(docs/models.md shows its format)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from latentctl import console, files, paths, store
from latentctl.errors import LatentctlError

REGISTRY_FILE = "registry.json"
LOCK_FILE = "registry.json.lock"
REGISTRY_FORMAT = "latentctl.registry"
REGISTRY_VERSION = 1
SOURCES = ("home", "trained", "imported", "hub")  # home: a folder in $LATENTCTL_HOME/models, never in the file
NAME = re.compile(r"[A-Za-z0-9][\w.+-]*(/[A-Za-z0-9][\w.+-]*)?(@[\w./+-]+)?")


@dataclass
class Entry:
    """One registered model: its name, its folder and where it came from."""

    name: str
    path: Path
    source: str  # one of SOURCES
    added: str | None = None  # ISO 8601, for entries of registry.json
    hub: dict[str, str] = field(default_factory=dict)  # repo_id, revision and commit of a pulled model

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "source": self.source, "added": self.added,
                **({"hub": self.hub} if self.hub else {})}


def registry_file() -> Path:
    """Return the path of ``registry.json`` (which may not exist yet)."""
    return paths.home() / REGISTRY_FILE


def models_home() -> Path:
    """Return the folder whose model folders are registered by being there."""
    return paths.home() / "models"


def entries() -> list[Entry]:
    """Return every registered model, sorted by name: the folders of ``models_home()``, then registry.json's."""
    home_models = models_home()
    found = [Entry(folder.name, folder, "home") for folder in sorted(home_models.iterdir())
             if (folder / store.CONFIG_FILE).is_file()] if home_models.is_dir() else []
    taken = {entry.name for entry in found}
    found += [entry for entry in _read().values() if entry.name not in taken]
    return sorted(found, key=lambda entry: entry.name)


def find(name: str) -> Entry | None:
    """Return the model registered as ``name``, or None."""
    if "/" not in name and name not in (".", "..") and (models_home() / name / store.CONFIG_FILE).is_file():
        return Entry(name, models_home() / name, "home")
    return _read().get(name)


def register(path: Path, source: str, name: str | None = None, hub: dict[str, str] | None = None) -> str:
    """Register the model folder ``path`` and return its name.

    A folder in ``models_home()`` already is (its name is the folder's). A folder registered before keeps
    its name. Without ``name``, the folder's own name is used, with -2, -3... appended when another
    model has it. A ``name`` that another folder has is refused, except for a re-pulled Hub model, whose
    entry moves to the new snapshot.
    """
    if source not in SOURCES[1:]:
        raise ValueError(f"unknown source {source!r}")
    path = Path(path).expanduser().resolve()
    if path.parent == models_home().resolve():
        return path.name
    with _locked():
        return _register(path, source, name, hub)


def register_written(path: Path, source: str = "trained") -> str | None:
    """Register a model folder a command wrote (training) and say its name; return it, or None when there is no
    model yet (stopped before its first checkpoint) or the registry is broken, which only warns."""
    if not (Path(path) / store.CONFIG_FILE).is_file():
        return None
    try:
        name = register(path, source)
    except LatentctlError as error:
        console.warn(f"{path} was not registered ({error.message}): use it by its path")
        return None
    if Path(path).resolve().parent != models_home().resolve():
        console.info(f"registered as {name}: --model {name} finds it")
    return name


def _register(path: Path, source: str, name: str | None, hub: dict[str, str] | None) -> str:
    registered = _read()
    for entry in registered.values():
        if entry.path == path and name in (None, entry.name):
            return entry.name
    if name is None:
        name = _unique_name(path.name, registered)
    else:
        check_name(name)
        existing = find(name)
        same_repo = existing is not None and hub is not None and existing.hub.get("repo_id") == hub.get("repo_id")
        if existing is not None and existing.path != path and not same_repo:
            raise LatentctlError(f"the name {name} is taken by {existing.path}",
                                 hint=f"choose another name, or forget that one with 'latentctl models rm {name}'")
    registered[name] = Entry(name, path, source, datetime.now(timezone.utc).isoformat(timespec="seconds"),
                             dict(hub or {}))
    _write(registered)
    return name


def check_name(name: str) -> None:
    """Raise a LatentctlError unless ``name`` can name a model (letters, digits, ``._+-``, one ``/``, ``@rev``)."""
    if not NAME.fullmatch(name):
        raise LatentctlError(f"{name!r} cannot name a model",
                             hint="use letters, digits and ._+- (user/repo and @revision for Hub models)")


def forget(name: str) -> Entry:
    """Remove ``name`` from registry.json, keeping its files; return the entry."""
    with _locked():
        registered = _read()
        if name not in registered:
            raise _unknown(name)
        entry = registered.pop(name)
        _write(registered)
    return entry


@dataclass
class Removed:
    """What ``remove`` did to a model: forgot its entry (its files stay) or deleted its folder."""

    entry: Entry
    deleted: bool

    def to_json(self) -> dict[str, Any]:
        return {"name": self.entry.name, "path": str(self.entry.path), "source": self.entry.source,
                "deleted": self.deleted}


def remove(name: str, confirm: Callable[[Path], bool] | None = None) -> Removed | None:
    """Forget a model registered from elsewhere, keeping its files; or delete a folder of ``models_home()``
    with everything in it (training state, samples) once ``confirm(folder)`` says yes.

    Without ``confirm`` (no one to ask) such a folder is refused; a "no" returns None."""
    entry = find(name)
    if entry is None:
        raise _unknown(name)
    if entry.source != "home":
        forget(name)
        return Removed(entry, deleted=False)
    if confirm is None:
        raise LatentctlError(f"not deleting {entry.path} without confirmation",
                             hint=f"pass --yes to delete it: latentctl models rm {name} --yes")
    if not confirm(entry.path):
        return None
    delete_home_model(name)
    return Removed(entry, deleted=True)


def delete_home_model(name: str) -> Path:
    """Delete the model folder ``models_home()/name`` with everything in it (training state, samples)."""
    entry = find(name)
    if entry is None or entry.source != "home":
        raise _unknown(name)
    shutil.rmtree(entry.path)
    return entry.path


def describe_all() -> list[dict[str, Any]]:
    """Return what ``models list`` shows: ``describe`` of every registered model, sorted by name."""
    return [describe(entry) for entry in entries()]


def show(name: str) -> dict[str, Any]:
    """Return what ``models show`` shows of the model ``name``: ``describe`` and its config.json (None when
    it cannot be read)."""
    entry = find(name)
    if entry is None:
        raise _unknown(name)
    described = describe(entry)
    return {**described, "config": store.read_config(entry.path).to_json() if described["status"] == "ok" else None}


def describe(entry: Entry) -> dict[str, Any]:
    """Return what ``models list`` shows of a model: kind, sizes, labels, training, or why it cannot be read."""
    document: dict[str, Any] = {"name": entry.name, **entry.to_json(), "status": "ok"}
    try:
        config = store.read_config(entry.path)
    except LatentctlError as error:
        return {**document, "status": "missing" if not entry.path.exists() else "invalid", "problem": error.message}
    weights = entry.path / store.WEIGHTS_FILE
    document.update(kind=config.kind, architecture=config.architecture.get("name"), image_size=config.image_size,
                    channels=config.channels, latent_dim=config.latent_dim, labels=config.labels,
                    epochs=config.training.get("epochs"), complete=config.training.get("complete"),
                    size_bytes=sum(file.stat().st_size for file in (weights, entry.path / store.CONFIG_FILE)
                                   if file.is_file()),
                    parameters=_parameter_count(weights))
    if document["parameters"] is None:
        document.update(status="invalid", problem=f"{weights} is missing or not a safetensors file")
    return document


def size_text(size_bytes: int | None) -> str:
    """A size as people read it: 1.2 MB, 340 B, or - when unknown."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size_bytes is not None and size_bytes >= scale:
            return f"{size_bytes / scale:.1f} {unit}"
    return "-" if size_bytes is None else f"{size_bytes} B"


def count_text(count: int) -> str:
    """A parameter count as people read it: 3.58M, 12.0k."""
    return f"{count / 1e6:.2f}M" if count >= 1e6 else f"{count / 1e3:.1f}k" if count >= 1e3 else str(count)


def image_text(model: dict[str, Any]) -> str:
    """A described model's images, as SIZExSIZExCHANNELS (- for a model without them)."""
    return f"{model['image_size']}x{model['image_size']}x{model['channels']}" if model.get("image_size") else "-"


def value_text(value: Any) -> str:
    """A config value on one line; a dict as "key value, key value"."""
    if isinstance(value, dict):
        return ", ".join(f"{key} {value_text(item)}" for key, item in value.items())
    return str(value)


def _parameter_count(weights: Path) -> int | None:
    """Return the number of values in a safetensors file, from its header alone (None if unreadable)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(weights), framework="numpy") as tensors:
            shapes = [tensors.get_slice(name).get_shape() for name in tensors.keys()]  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError, ValueError):
        return None
    total = 0
    for shape in shapes:
        count = 1
        for side in shape:
            count *= side
        total += count
    return total


def _unique_name(base: str, registered: dict[str, Entry]) -> str:
    base = re.sub(r"[^\w.+-]", "-", base).lstrip("-._+") or "model"
    candidate, number = base, 1
    while candidate in registered or (models_home() / candidate).exists():
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def _unknown(name: str) -> LatentctlError:
    return LatentctlError(f"no model is registered as {name}", hint="'latentctl models list' shows the names")


def _read() -> dict[str, Entry]:
    """Return registry.json's entries by name (none when there is no file); an invalid file is an error."""
    path = registry_file()
    if not path.is_file():
        return {}
    document = files.read_json(path)

    def bad(problem: str) -> LatentctlError:
        return LatentctlError(f"{path} is not a valid latentctl registry: {problem}",
                              hint="fix or delete it (models in $LATENTCTL_HOME/models need no entry)")

    if not isinstance(document, dict) or document.get("format") != REGISTRY_FORMAT:
        raise bad(f"missing \"format\": \"{REGISTRY_FORMAT}\"")
    if document.get("format_version") != REGISTRY_VERSION:
        raise LatentctlError(f"{path} has registry format version {document.get('format_version')}, this "
                             f"latentctl reads version {REGISTRY_VERSION}", hint="upgrade latentctl")
    models = document.get("models")
    if not isinstance(models, dict):
        raise bad("\"models\" must be a dict")
    found = {}
    for name, item in models.items():
        if not (isinstance(item, dict) and isinstance(item.get("path"), str) and item.get("source") in SOURCES[1:]
                and isinstance(item.get("hub", {}), dict)):
            raise bad(f"the entry {name!r} needs a \"path\" and a \"source\" ({', '.join(SOURCES[1:])})")
        found[name] = Entry(name, Path(item["path"]), item["source"], item.get("added"), dict(item.get("hub", {})))
    return found


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """Hold the registry's lock (an exclusive lock on ``registry.json.lock``, waiting for it) while a change
    reads, edits and writes registry.json. The lock goes with the process, so a crash never leaves it held."""
    lock_path = paths.home() / LOCK_FILE
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as lock:
        _lock_file(lock.fileno(), True)
        try:
            yield
        finally:
            _lock_file(lock.fileno(), False)


def _lock_file(descriptor: int, take: bool) -> None:
    """Take (waiting as long as it takes) or release the exclusive lock on an open file."""
    if sys.platform == "win32":
        import msvcrt

        os.lseek(descriptor, 0, os.SEEK_SET)  # msvcrt locks bytes from the current position
        while True:
            try:
                msvcrt.locking(descriptor, msvcrt.LK_LOCK if take else msvcrt.LK_UNLCK, 1)
                return
            except OSError:  # LK_LOCK gives up after 10 s: keep waiting
                if not take:
                    raise
    else:
        import fcntl

        fcntl.flock(descriptor, fcntl.LOCK_EX if take else fcntl.LOCK_UN)


def _write(registered: dict[str, Entry]) -> None:
    files.write_json(registry_file(), {"format": REGISTRY_FORMAT, "format_version": REGISTRY_VERSION,
                                       "models": {name: registered[name].to_json() for name in sorted(registered)}})


# ------------------------------------------------------------------------------- `models list` and `show`

def show_rows(shown: dict[str, Any]) -> list[list[Any]]:
    """The rows (field, value) of ``models show``'s overview of what :func:`show` returned."""
    hub, config = shown.get("hub"), shown["config"]
    source = f"hub: {hub['repo_id']}@{hub['revision']} (commit {hub['commit'][:12]})" if hub else \
        {"home": "$LATENTCTL_HOME/models"}.get(shown["source"], shown["source"])
    rows = [["name", shown["name"]], ["path", shown["path"]], ["source", source]]
    if config is None:
        rows.append(["status", f"[red]{shown['status']}[/]: {shown.get('problem', '')}"])
    else:
        rows += [["kind", config["kind"]], ["architecture", value_text(config["architecture"])],
                 ["images", image_text(shown)], ["noise", config["latent_dim"] or "-"],
                 ["labels", ", ".join(config["labels"]) or "-"],
                 ["size", f"{size_text(shown['size_bytes'])}, {count_text(shown['parameters'])} parameters"],
                 *[[key, value_text(value)] for key, value in config["training"].items()]]
    return rows


def print_models(described: list[dict[str, Any]]) -> None:
    """Print ``models list``'s table of what :func:`describe_all` returned (stderr)."""
    from rich.table import Table

    # print_table's columns cut long cells short; here the path must stay whole, so it folds instead
    table = Table(title=f"models ({len(described)})", title_justify="left", show_edge=False)
    for column in ("name", "kind", "size", "images", "labels", "epochs", "source", "path"):
        table.add_column(column, no_wrap=column not in ("name", "path"), overflow="fold" if column == "path" else None)
    for model in described:
        epochs = "-" if model.get("epochs") is None else \
            f"{model['epochs']}" + ("" if model.get("complete", True) else " (interrupted)")
        table.add_row(model["name"], model.get("kind", f"[red]{model['status']}[/]"),
                      size_text(model.get("size_bytes")), image_text(model),
                      str(len(model["labels"])) if model.get("labels") else "-", epochs, model["source"], model["path"])
    console.stderr.print(table)

