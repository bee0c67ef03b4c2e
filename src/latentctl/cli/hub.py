"""``latentctl hub push`` and ``latentctl hub pull``: models on the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from latentctl import console, hub, lookup, registry
from latentctl.cli.options import Json
from latentctl.cli.render import emit
from latentctl.errors import LatentctlError

app = typer.Typer(help="Share models on the Hugging Face Hub: push and pull.", no_args_is_help=True)


def _repo_id(value: str) -> str:
    try:  # at parse time: a bad id is a usage error (exit 2), before any model is looked up
        hub.check_repo_id(hub.split_revision(value)[0])
    except LatentctlError as error:
        raise typer.BadParameter(error.message) from None
    return value


def _name(value: str | None) -> str | None:
    try:
        if value is not None:
            registry.check_name(value)
    except LatentctlError as error:
        raise typer.BadParameter(f"{error.message}: {error.hint}") from None
    return value


@app.command("push")
def push(
    model: Annotated[Path, typer.Argument(help="Model folder, or the name of a model latentctl knows "
                                          "(see 'latentctl models list').", show_default=False)],
    repo_id: Annotated[str, typer.Argument(help="The Hub repository, user/repo (or org/repo).", callback=_repo_id,
                                           show_default=False)],
    private: Annotated[bool, typer.Option("--private", help="Make the repository private when it is "
                                          "created (an existing one keeps its visibility).")] = False,
    revision: Annotated[str | None, typer.Option("--revision", help="Branch to commit to, created from main if "
                                                 "new [default: main].")] = None,
    message: Annotated[str | None, typer.Option("--message", "-m", help="Commit message [default: 'Upload a "
                                                "latentctl KIND model'].")] = None,
    json_output: Json = False,
) -> None:
    """Upload a model to the Hugging Face Hub, creating the repository if needed.

    One commit: the weights, config.json, a sample image (generators: seeds 0-15) and a model card. The
    token comes from HF_TOKEN or 'hf auth login'; latentctl never prints or stores it.

    Examples:

        latentctl hub push cgan-mnist ada/mnist-cgan
        latentctl hub push runs/faces ada/celeba-faces --private --message "25 epochs"
        latentctl hub push gan-celeba ada/celeba-faces --revision experiment --json
    """
    pushed = hub.push(lookup.resolve_model(model, ""), repo_id, private=private, revision=revision, message=message)
    console.info(f"pushed {pushed.model} ({', '.join(pushed.files)}) to https://huggingface.co/{repo_id}"
                 + (f" (branch {pushed.revision})" if revision else ""))
    emit("hub push", pushed, json_output, pushed.url)


@app.command("pull")
def pull(
    repo_id: Annotated[str, typer.Argument(help="The Hub repository, user/repo, optionally @REVISION (a branch, "
                                           "tag or commit).", callback=_repo_id, show_default=False)],
    name: Annotated[str | None, typer.Option("--name", callback=_name, help="Register it under this name "
                                             "[default: REPO_ID, with @REVISION when given].")] = None,
    json_output: Json = False,
) -> None:
    """Download a model from the Hugging Face Hub into the Hub cache and register it.

    Only model.safetensors and config.json, checked to be a latentctl model. --model REPO_ID (or --name)
    then finds it, offline too (a --model user/repo not pulled yet pulls itself); pulling again updates it.

    Examples:

        latentctl hub pull ada/mnist-cgan
        latentctl hub pull ada/celeba-faces@experiment --name faces-exp
        latentctl hub pull ada/mnist-cgan --json | jq -r .path
    """
    pulled = hub.pull(*hub.split_revision(repo_id), name=name)
    console.info(f"pulled {pulled.repo_id}@{pulled.revision} (commit {pulled.commit[:12]}, {pulled.config.kind}) "
                 f"as {pulled.name}: --model {pulled.name} finds it")
    emit("hub pull", pulled, json_output, pulled.path)
