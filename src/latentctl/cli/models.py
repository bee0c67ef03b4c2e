"""``latentctl models ...``: the models latentctl knows by name: list, show, rm, and import seed checkpoints."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from latentctl import console
from latentctl.cli.options import Json
from latentctl.errors import LatentctlError
from latentctl.seed_import import ARCHS, IMPORT_KINDS

app = typer.Typer(help="The models latentctl knows by name: list, show, remove, import seed checkpoints.",
                  no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="A model's name, as 'latentctl models list' shows it (a folder name "
                                     "in $LATENTCTL_HOME/models, a registered name, or user/repo for a pulled "
                                     "Hub model).", show_default=False)]


ImportKind = Enum("ImportKind", [(kind, kind) for kind in IMPORT_KINDS], type=str)
Arch = Enum("Arch", [(arch, arch) for arch in ARCHS], type=str)


@app.command("list")
def list_models(json_output: Json = False) -> None:
    """List the models latentctl knows: the folders in $LATENTCTL_HOME/models and the registered ones.

    Registered models are those trained or imported into another folder (--out) and those pulled from
    the Hub. A table on stderr, or with --json one document on stdout: {"models": [{"name", "kind",
    "size_bytes", "parameters", "image_size", "labels", "epochs", "source", "path", "status", ...}]}.

    Examples:

        latentctl models list
        latentctl models list --json | jq -r '.models[] | select(.kind == "gan") | .name'
    """
    from latentctl import registry

    described = [registry.describe(entry) for entry in registry.entries()]
    if json_output:
        console.emit_json({"command": "models list", "models": described})
        return
    if not described:
        console.info("no models yet: train one ('latentctl train cgan'), pull one ('latentctl hub pull user/repo') "
                     "or import one ('latentctl models import FILE --kind gan')")
        return
    from rich.table import Table

    # print_table's columns cut long cells short; here the path must stay whole, so it folds instead
    table = Table(title=f"models ({len(described)})", title_justify="left", show_edge=False)
    for column in ("name", "kind", "size", "images", "labels", "epochs", "source"):
        table.add_column(column, no_wrap=column != "name")
    table.add_column("path", overflow="fold")
    for model in described:
        labels = str(len(model["labels"])) if model.get("labels") else "-"
        table.add_row(model["name"], model.get("kind", f"[red]{model['status']}[/]"), _size(model.get("size_bytes")),
                      _image(model), labels, _epochs(model), model["source"], model["path"])
    console.stderr.print(table)


@app.command("show")
def show(name: Name, json_output: Json = False) -> None:
    """Show one model: where it is, where it came from, and its config.json (architecture, training).

    Prints the overview on stderr and the model's folder on stdout, or with --json one document
    {"name", "path", "source", "kind", ..., "config": {...}} on stdout.

    Examples:

        latentctl models show cgan-mnist
        latentctl models show ada/celeba-faces --json | jq .config.training
        cd "$(latentctl models show gan-celeba)"
    """
    from latentctl import registry, store

    entry = registry.find(name)
    if entry is None:
        raise LatentctlError(f"no model is registered as {name}", hint="'latentctl models list' shows the names")
    described = registry.describe(entry)
    config = store.read_config(entry.path).to_json() if described["status"] == "ok" else None
    if json_output:
        console.emit_json({"command": "models show", **described, "config": config})
        return
    rows = [["name", entry.name], ["path", entry.path], ["source", _source(described)]]
    if config is None:
        rows.append(["status", f"[red]{described['status']}[/]: {described.get('problem', '')}"])
    else:
        rows += [["kind", config["kind"]], ["architecture", _architecture(config["architecture"])],
                 ["images", _image(described)], ["noise", config["latent_dim"] or "-"],
                 ["labels", ", ".join(config["labels"]) or "-"],
                 ["size", f"{_size(described['size_bytes'])}, {_count(described['parameters'])} parameters"],
                 *[[key, _value(value)] for key, value in config["training"].items()]]
    console.print_table(f"model {entry.name}", ["", ""], rows)
    console.emit_path(entry.path)


@app.command("rm")
def remove(
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete a folder of $LATENTCTL_HOME/models without "
                                      "asking.")] = False,
    json_output: Json = False,
) -> None:
    """Forget a registered model, or delete a model folder of $LATENTCTL_HOME/models.

    A model registered from elsewhere (trained or imported with --out, pulled from the Hub) is only
    forgotten: its files stay where they are (pulled ones in the Hub cache, see 'hf cache'). A model in
    $LATENTCTL_HOME/models is that folder, so rm deletes it with everything in it (training state,
    samples): it asks first, or needs --yes when there is no terminal to ask on.

    Examples:

        latentctl models rm faces-run2
        latentctl models rm cgan-mnist --yes
        latentctl models rm ada/celeba-faces
    """
    from latentctl import registry

    entry = registry.find(name)
    if entry is None:
        raise LatentctlError(f"no model is registered as {name}", hint="'latentctl models list' shows the names")
    if entry.source != "home":
        registry.forget(name)
        kept = "the Hub cache" if entry.hub else str(entry.path)
        console.info(f"forgot {name}; its files stay in {kept}")
        deleted = False
    else:
        if not yes:
            if not sys.stdin.isatty():
                raise LatentctlError(f"not deleting {entry.path} without confirmation",
                                     hint=f"pass --yes to delete it: latentctl models rm {name} --yes")
            if not typer.confirm(f"delete {entry.path} and everything in it?", err=True):
                raise typer.Exit(1)
        registry.delete_home_model(name)
        console.info(f"deleted {entry.path}")
        deleted = True
    if json_output:
        console.emit_json({"command": "models rm", "name": name, "path": str(entry.path), "source": entry.source,
                           "deleted": deleted})


@app.command("import")
def import_checkpoint(
    file: Annotated[Path, typer.Argument(help="A .pth file of the seed notebooks: {'gen': state_dict} or "
                                         "{'classifier': state_dict}.", show_default=False)],
    kind: Annotated[ImportKind, typer.Option("--kind", help="What the file holds: gan (a generator), cgan (a "
                                             "generator with one-hot digit labels) or classifier (40 "
                                             "attributes).", show_default=False)],
    arch: Annotated[Arch | None, typer.Option("--arch", help="The seed architecture [default: detected from "
                                              "the tensors].")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Model folder to write [default: $LATENTCTL_HOME/"
                                             "models/ followed by the file's name].", file_okay=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a model already in --out.")] = False,
    json_output: Json = False,
) -> None:
    """Import a checkpoint of the seed notebooks (.pth) as a latentctl model folder.

    The file is read with torch.load(weights_only=True) only: a file that needs full unpickling (a
    pickled network, any custom object) is refused. The architecture is detected from the tensors'
    names and shapes (dcgan-64: the CelebA generator, 64x64; dcgan-28: the MNIST generators; classifier-64:
    the 40-attribute classifier), every tensor's shape is checked, and the result is a normal model
    folder: sample, interpolate and classify use it and give the seed code's outputs.

    Examples:

        latentctl models import pretrained_celeba.pth --kind gan
        latentctl models import pretrained_classifier.pth --kind classifier --out models/seed-classifier
        latentctl models import cgan_mnist.pth --kind cgan --arch dcgan-28 --json
    """
    from latentctl.seed_import import import_checkpoint as run_import

    imported = run_import(file, kind.value, arch.value if arch else None, out, force=force)
    config = imported.config
    if config.kind == "classifier":
        what = f"a {len(config.labels)}-attribute classifier of {config.image_size}x{config.image_size} images"
    else:
        what = (f"a generator of {config.image_size}x{config.image_size}x{config.channels} images from "
                f"{config.latent_dim}-d noise" + (f" and {len(config.labels)} one-hot labels" if config.labels else ""))
    console.info(f"imported {what} (seed {imported.arch}, {imported.tensors} tensors) into {imported.path} "
                 f"as {imported.name}")
    if json_output:
        console.emit_json({"command": "models import", "file": str(file), "name": imported.name,
                           "model": str(imported.path), "kind": imported.kind, "arch": imported.arch,
                           "tensors": imported.tensors, "config": config.to_json()})
    else:
        console.emit_path(imported.path)


# ----------------------------------------------------------------------------------------------- rendering

def _size(size_bytes: int | None) -> str:
    if size_bytes is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size_bytes >= scale:
            return f"{size_bytes / scale:.1f} {unit}"
    return f"{size_bytes} B"


def _count(count: int | None) -> str:
    if count is None:
        return "-"
    return f"{count / 1e6:.2f}M" if count >= 1e6 else f"{count / 1e3:.1f}k" if count >= 1e3 else str(count)


def _image(model: dict[str, Any]) -> str:
    if model.get("image_size") is None:
        return "-"
    return f"{model['image_size']}x{model['image_size']}x{model['channels']}"


def _epochs(model: dict[str, Any]) -> str:
    if model.get("epochs") is None:
        return "-"
    return f"{model['epochs']}" + ("" if model.get("complete", True) else " (interrupted)")


def _source(model: dict[str, Any]) -> str:
    hub = model.get("hub")
    if hub:
        return f"hub: {hub['repo_id']}@{hub['revision']} (commit {hub['commit'][:12]})"
    return {"home": "$LATENTCTL_HOME/models"}.get(model["source"], model["source"])


def _architecture(architecture: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in architecture.items())


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key} {_value(item)}" for key, item in value.items())
    return str(value)
