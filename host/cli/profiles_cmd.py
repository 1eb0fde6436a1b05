"""`npc-host profiles check|list` and `npc-host import-card`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from host.cli import app
from host.cli.common import settings_or_exit
from host.profiles.card_import import DEFAULT_POSITION, import_card
from host.profiles.loader import ServerLoad, load_all, load_server
from host.profiles.problems import ProfileError
from host.profiles.schema import Vec3

profiles_app = typer.Typer(help="Check and list persona profiles.", no_args_is_help=True)
app.add_typer(profiles_app, name="profiles")

ProfilesDir = Annotated[
    Path | None,
    typer.Argument(help="The profiles root or one server's folder [default: the configured profiles_dir]"),
]


@profiles_app.command("check")
def check(directory: ProfilesDir = None) -> None:
    """Validate every profile; print one line per server, or every problem as `path:line: field: message`."""
    loads = _load(directory)
    for load in loads:
        typer.echo(_summary(load))
    problems = [problem for load in loads for problem in load.problems]
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        typer.echo(f"{len(problems)} problem(s) found", err=True)
        raise typer.Exit(1)


@profiles_app.command("list")
def list_profiles(directory: ProfilesDir = None) -> None:
    """Show the NPCs that load, with where they stand and how far they hear and speak."""
    loads = _load(directory)
    table = Table("server", "id", "name", "position", "hears", "speaks", "voice")
    for load in loads:
        for npc in sorted(load.npcs.values(), key=lambda npc: npc.id):
            pos = npc.world.position
            voice = npc.voice.model if npc.voice.model == "packaged" else Path(npc.voice.model).name
            where = f"{pos.x:g}, {pos.y:g}, {pos.z:g}"
            table.add_row(
                load.name,
                npc.id,
                npc.name,
                where,
                f"{npc.world.hearing_range:g}",
                f"{npc.world.speaking_range:g}",
                voice,
            )
    Console().print(table)
    problem_count = sum(len(load.problems) for load in loads)
    if problem_count:
        typer.echo(f"{problem_count} problem(s) found; run `npc-host profiles check` for details", err=True)


@app.command("import-card")
def import_card_command(
    card: Annotated[Path, typer.Argument(help="A SillyTavern character card: .json or .png (V1, V2 or V3)")],
    *,
    server: Annotated[str, typer.Option("--server", help="The server folder to add the NPC to")],
    profiles_dir: Annotated[Path | None, typer.Option("--profiles-dir", help="[default: the configured one]")] = None,
    npc_id: Annotated[str | None, typer.Option("--id", help="The NPC id [default: from the card's name]")] = None,
    position: Annotated[str | None, typer.Option("--position", help="X,Y,Z where the NPC stands")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file of the same id")] = False,
) -> None:
    """Turn a character card into `<profiles_dir>/<server>/<id>.toml`, its lorebook into lore entries."""
    server_dir = _profiles_root(profiles_dir) / server
    try:
        result = import_card(card, server_dir, npc_id=npc_id, position=_position(position), overwrite=force)
    except ProfileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if result.created_server:
        typer.echo(f"created {server_dir / 'server.toml'} (add rcon and log_path before `npc-host run`)")
    typer.echo(f"wrote {result.path}: {result.npc.name} ({result.npc.id}), {len(result.npc.lore)} lore entries")
    for note in result.notes:
        typer.echo(f"note: {note}")
    problems = [problem for problem in load_server(server_dir).problems if problem.path == result.path]
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        raise typer.Exit(1)


def _load(directory: Path | None) -> list[ServerLoad]:
    root = _profiles_root(directory)
    try:
        loads = load_all(root)
    except ProfileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if not loads:
        typer.echo(f"error: no server folders (with a server.toml) under {root}", err=True)
        raise typer.Exit(1)
    return loads


def _summary(load: ServerLoad) -> str:
    if load.server is None:
        return f"{load.name}: not loaded (server.toml has problems)"
    count = len(load.npcs)
    ids = ", ".join(sorted(load.npcs))
    rejected = f"; {len(load.rejected_files)} file(s) rejected" if load.rejected_files else ""
    listed = f" ({ids})" if ids else ""
    return f"{load.name}: {count} NPC{'' if count == 1 else 's'}{listed}{rejected}"


def _profiles_root(directory: Path | None) -> Path:
    return directory if directory is not None else settings_or_exit().profiles_dir


def _position(text: str | None) -> Vec3:
    if text is None:
        return DEFAULT_POSITION
    parts = text.split(",")
    try:
        x, y, z = (float(part) for part in parts)
    except ValueError:
        raise typer.BadParameter(f"expected X,Y,Z such as 0,64,0; got {text!r}", param_hint="--position") from None
    return Vec3(x=x, y=y, z=z)
