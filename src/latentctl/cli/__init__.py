"""The ``latentctl`` command: one Typer app, sub-apps per noun, verbs at the top level; the one place where
errors become messages and exit codes. Command modules import torch inside their functions: --help stays fast."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import click
import typer
from typer.core import TyperCommand, TyperGroup

from latentctl import __version__
from latentctl.console import print_error, stderr
from latentctl.errors import LatentctlError, UsageError, from_os_error

EXIT_INTERRUPTED = 130


class _Root(TyperGroup):
    """The root group: the one place where exceptions become one-line messages and exit codes."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["latentctl.argv"] = list(args)  # the command line, for `train --nproc` to start it again
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (LatentctlError, KeyboardInterrupt, OSError) as error:
            if _debug(ctx):
                raise
            if isinstance(error, KeyboardInterrupt):
                stderr.print("[bold red]interrupted[/]")
                raise typer.Exit(EXIT_INTERRUPTED) from None
            print_error(error if isinstance(error, LatentctlError) else from_os_error(error))
            raise typer.Exit(1) from None


class _Command(TyperCommand):
    """Every command: the library's UsageError becomes what Typer says of a bad flag (exit 2), raised in the
    command's own context so that the usage line comes with it."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as error:
            raise typer.BadParameter(error.message, ctx=ctx, param_hint=error.option) from None


def _debug(ctx: click.Context) -> bool:
    return bool(ctx.find_root().meta.get("latentctl.debug")) or os.environ.get("LATENTCTL_DEBUG") == "1"


app = typer.Typer(name="latentctl", cls=_Root, help="Controllable image generation with GANs: train, sample, "
                  "interpolate, steer, and edit photos.", no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode="markdown", context_settings={"help_option_names": ["-h", "--help"]})


def _version(value: bool) -> None:
    if value:
        typer.echo(f"latentctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks for errors.")] = False,
) -> None:
    """Controllable image generation with GANs: train, sample, interpolate, steer, and edit photos.

    Data and models live under `$LATENTCTL_HOME` (default: a per-user data folder), so
    `latentctl interpolate --digit 7` works right after `latentctl train cgan`.
    Results go to stdout (`--json` for one JSON document), progress and messages to stderr.
    """
    ctx.meta["latentctl.debug"] = debug


def _register() -> None:
    from latentctl.cli import classify, data, demo, directions, evaluate, generate, hub, models, photos, steer, train

    groups = {"data": data, "train": train, "models": models, "hub": hub, "eval": evaluate, "directions": directions}
    for name, group in groups.items():
        app.add_typer(group.app, name=name)
    for module in (generate, classify, steer, photos, demo):  # verbs at the top level
        module.register(app)
    for typer_app in (app, *(group.typer_instance for group in app.registered_groups)):
        for command in typer_app.registered_commands:
            if command.cls in (None, TyperCommand):
                command.cls = _Command


_register()


def main() -> None:
    """Console-script entry point."""
    app(prog_name="latentctl")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
