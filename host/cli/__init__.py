"""The `npc-host` command, loaded lazily so start-up imports nothing heavy.

Each command lives in its own module and registers itself on `app` (`@app.command(...)` or `app.add_typer(...)`).
`COMMANDS` below names every top-level command, the module that registers it and the one line shown in the command
list. A module is imported only when its command runs or its own `--help` is asked for, so `npc-host --help` and
`npc-host status` never load llama.cpp, faster-whisper or Piper, and a command whose optional part is not installed
says which pip extra brings it instead of failing at start-up.

To add a command: write `host/cli/<name>_cmd.py` registering on `app`, then add one line to `COMMANDS`.
"""

from __future__ import annotations

import difflib
import importlib
from typing import NamedTuple

import typer
import typer.main
from typer import _click as click  # typer's own click, the base of its command classes
from typer.core import TyperCommand, TyperGroup

from host.extras import missing_extra


class CommandEntry(NamedTuple):
    module: str
    help: str


COMMANDS: dict[str, CommandEntry] = {
    "run": CommandEntry("host.cli.run_cmd", "Run the host: NPCs appear in the game, hear players and answer."),
    "status": CommandEntry(
        "host.cli.status_cmd", "Each process's roles and their health; the Redis hub's streams and their lag."
    ),
    "demo": CommandEntry("host.cli.demo_cmd", "The voice scene: recorded players talk to the example village."),
    "chat": CommandEntry("host.cli.chat_cmd", "Talk to an NPC in the terminal."),
    "say": CommandEntry("host.cli.say_cmd", "Write a line spoken in an NPC's voice to a WAV file."),
    "models": CommandEntry(
        "host.cli.models_cmd", "Which packaged models and runtimes are installed; how to add the rest."
    ),
    "profiles": CommandEntry("host.cli.profiles_cmd", "Check and list persona profiles."),
    "import-card": CommandEntry("host.cli.profiles_cmd", "Turn a SillyTavern character card into an NPC profile."),
    "config": CommandEntry("host.cli.config_cmd", "Inspect the configuration."),
    "db": CommandEntry("host.cli.db_cmd", "Database schema (upgrade, current)."),
    "rcon": CommandEntry("host.cli.rcon_cmd", "Run one command on a Minecraft server over RCON."),
    "bridge-sim": CommandEntry("host.cli.bridge_cmd", "Play one player through the voice bridge, as a plugin would."),
    "eval": CommandEntry("host.cli.eval_cmd", "Run character-test scenes against NPCs; pass rates by category."),
    "advisor": CommandEntry("host.cli.advisor_cmd", "The advisor: passes over the transcripts that steer the NPCs."),
    "admin": CommandEntry("host.cli.admin_cmd", "The admin page's users."),
}


class LazyGroup(TyperGroup):
    """Lists `COMMANDS` from their one-line help; imports a command's module only when the command is resolved."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if cmd_name in self.commands:
            loaded = self.commands[cmd_name]
            if entry is not None:  # the command list shows the same line whether the module is loaded or not
                loaded.short_help = entry.help
            return loaded
        # Only the command list asks before `resolve_command` has loaded the module: a stand-in carries its line.
        return None if entry is None else TyperCommand(name=cmd_name, help=entry.help, short_help=entry.help)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] in COMMANDS and args[0] not in self.commands:
            self._load(args[0])
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.UsageError as exc:
            close = difflib.get_close_matches(args[0], list(COMMANDS)) if args else []
            if close and "Did you mean" not in exc.message:  # typer suggests from the commands loaded so far only
                exc.message = f"{exc.message.rstrip('.')}. Did you mean {', '.join(map(repr, close))}?"
            raise

    def _load(self, name: str) -> None:
        try:
            importlib.import_module(COMMANDS[name].module)
        except ModuleNotFoundError as exc:
            missing = missing_extra(exc)
            if missing is None:
                raise
            typer.secho(f"npc-host {name}: {missing.message}", err=True, fg=typer.colors.RED)
            raise typer.Exit(1) from None
        built = typer.main.get_group(app)
        for command_name, command in built.commands.items():
            _plain_help(command)
            self.commands.setdefault(command_name, command)


def _plain_help(command: click.Command) -> None:
    """Help text is shown as written: `[happy]` stays `[happy]` instead of vanishing as rich markup."""
    if isinstance(command, TyperGroup | TyperCommand):
        command.rich_markup_mode = None
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


app = typer.Typer(
    name="npc-host",
    cls=LazyGroup,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,  # a traceback's locals may hold secrets; plain tracebacks import nothing heavy
)


@app.callback()
def _root() -> None:
    """AI role-play characters that listen and talk, for game servers."""


def main() -> None:
    app()
