"""`npc-host config show`: the effective configuration, secrets masked."""

from __future__ import annotations

import json

import typer
from pydantic import ValidationError

from host.cli import app
from host.config import load_settings

config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def show() -> None:
    """Print the effective configuration (defaults, npc-host.toml, NPC_HOST_* variables) with secrets masked."""
    try:
        settings = load_settings()
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            typer.echo(f"config: {field}: {err['msg']}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(settings.masked(), indent=2))
