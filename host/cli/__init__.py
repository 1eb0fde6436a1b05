"""The `npc-host` command. Each command group lives in its own module and registers itself on `app`."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="npc-host",
    help="AI role-play characters that listen and talk, for game servers.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold secrets
)

# Modules that add commands to `app` when imported.
_COMMAND_MODULES = (
    "host.cli.config_cmd",
    "host.cli.profiles_cmd",
    "host.cli.db_cmd",
    "host.cli.rcon_cmd",
    "host.cli.say_cmd",
    "host.cli.chat_cmd",
    "host.cli.run_cmd",
    "host.cli.demo_cmd",
    "host.cli.bridge_cmd",
    "host.cli.eval_cmd",
    "host.cli.advisor_cmd",
    "host.cli.admin_cmd",
)


def main() -> None:
    for module in _COMMAND_MODULES:
        importlib.import_module(module)
    app()
