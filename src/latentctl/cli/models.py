"""``latentctl models ...``: the models latentctl knows by name: list, show, rm, and import .pth checkpoints."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from latentctl import console, registry
from latentctl.cli.options import Json
from latentctl.cli.render import emit
from latentctl.seed_import import ARCHS, IMPORT_KINDS

app = typer.Typer(help="The models latentctl knows by name: list, show, remove, import checkpoints.",
                  no_args_is_help=True)
Name = Annotated[str, typer.Argument(help="A model's name, as 'latentctl models list' shows it (a folder name "
                                     "in $LATENTCTL_HOME/models, a registered name, or user/repo for a pulled "
                                     "Hub model).", show_default=False)]
ImportKind = Enum("ImportKind", [(kind, kind) for kind in IMPORT_KINDS], type=str)
Arch = Enum("Arch", [(arch, arch) for arch in ARCHS], type=str)


@app.command("list")
def list_models(json_output: Json = False) -> None:
    """List the models latentctl knows: the folders in $LATENTCTL_HOME/models and the registered ones.

    Registered: trained or imported elsewhere (--out), or pulled from the Hub. A table on stderr, or with
    --json {"models": [{"name", "kind", "size_bytes", "parameters", "image_size", "labels", ...}]} on stdout.

    Examples:

        latentctl models list
        latentctl models list --json | jq -r '.models[] | select(.kind == "gan") | .name'
    """
    described = registry.describe_all()
    if json_output:
        console.emit_json({"command": "models list", "models": described})
    elif not described:
        console.info("no models yet: train one ('latentctl train cgan'), pull one ('latentctl hub pull user/repo') "
                     "or import one ('latentctl models import FILE --kind gan')")
    else:
        registry.print_models(described)


@app.command("show")
def show(name: Name, json_output: Json = False) -> None:
    """Show one model: where it is, where it came from, and its config.json (architecture, training).

    The overview on stderr and the folder on stdout, or with --json {"name", "path", ..., "config": {...}}.

    Examples:

        latentctl models show cgan-mnist
        latentctl models show ada/celeba-faces --json | jq .config.training
        cd "$(latentctl models show gan-celeba)"
    """
    shown = registry.show(name)
    if json_output:
        console.emit_json({"command": "models show", **shown})
        return
    console.print_table(f"model {shown['name']}", ["", ""], registry.show_rows(shown))
    console.emit_path(shown["path"])


@app.command("rm")
def remove(name: Name, yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete a folder of "
                                                         "$LATENTCTL_HOME/models without asking.")] = False,
           json_output: Json = False) -> None:
    """Forget a registered model, or delete a model folder of $LATENTCTL_HOME/models.

    One registered from elsewhere (--out, or pulled from the Hub) is only forgotten: its files stay. A
    folder of $LATENTCTL_HOME/models is deleted with everything in it, after asking (or with --yes).

    Examples:

        latentctl models rm faces-run2
        latentctl models rm cgan-mnist --yes
        latentctl models rm ada/celeba-faces
    """
    def confirm(folder: Path) -> bool:
        return yes or typer.confirm(f"delete {folder} and everything in it?", err=True)

    removed = registry.remove(name, confirm=confirm if yes or sys.stdin.isatty() else None)
    if removed is None:  # "no" at the prompt
        raise typer.Exit(1)
    kept = "the Hub cache" if removed.entry.hub else removed.entry.path
    console.info(f"deleted {removed.entry.path}" if removed.deleted else f"forgot {name}; its files stay in {kept}")
    if json_output:
        console.emit_json({"command": "models rm", **removed.to_json()})


@app.command("import")
def import_checkpoint(
    file: Annotated[Path, typer.Argument(help="A .pth file of the seed notebooks ({'gen': state_dict} or "
                                         "{'classifier': state_dict}), or a generator of pytorch/examples' "
                                         "dcgan/main.py (netG_epoch_N.pth).", show_default=False)],
    kind: Annotated[ImportKind, typer.Option("--kind", help="What the file holds: gan (a generator), cgan (a "
                                             "generator with one-hot digit labels) or classifier (40 "
                                             "attributes).", show_default=False)],
    arch: Annotated[Arch | None, typer.Option("--arch", help="The architecture: a seed layout, or pytorch-dcgan "
                                              "(pytorch/examples' DCGAN generator) [default: detected].")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Model folder to write [default: $LATENTCTL_HOME/"
                                             "models/ followed by the file's name].", file_okay=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a model already in --out.")] = False,
    json_output: Json = False,
) -> None:
    """Import a checkpoint of the seed notebooks or of pytorch/examples' DCGAN (.pth) as a latentctl model folder.

    Read with torch.load(weights_only=True) only (nothing is unpickled); the architecture (dcgan-64, dcgan-28,
    classifier-64, pytorch-dcgan) is detected from the tensors, whose shapes are all checked; the folder gives
    the original code's outputs in every command.

    Examples:

        latentctl models import pretrained_celeba.pth --kind gan
        latentctl models import pretrained_classifier.pth --kind classifier --out models/seed-classifier
        latentctl models import cgan_mnist.pth --kind cgan --arch dcgan-28 --json
        latentctl models import out/netG_epoch_24.pth --kind gan --arch pytorch-dcgan
    """
    from latentctl import seed_import

    imported = seed_import.import_checkpoint(file, kind.value, arch.value if arch else None, out, force=force)
    console.info(f"imported {imported.description} ({imported.origin}, {imported.tensors} tensors) into "
                 f"{imported.path} as {imported.name}")
    emit("models import", imported, json_output, imported.path)

