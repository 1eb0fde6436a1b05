"""`npc-host config show`: the effective configuration, secrets masked."""

from __future__ import annotations

import json

import typer

from host.cli import app
from host.cli.common import settings_or_exit

config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def show() -> None:
    """Print the effective configuration (defaults, npc-host.toml, NPC_HOST_* variables) with secrets masked."""
    typer.echo(json.dumps(settings_or_exit().masked(), indent=2))
