"""`npc-host rcon SERVER COMMAND...`: run one command on a server over RCON and print the reply; exit code 1 when
the reply is one of vanilla's error replies (integrations/minecraft/replies.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from host.cli import app
from host.cli.common import fail, settings_or_exit
from host.errors import NpcHostError
from host.profiles.loader import load_all, load_server
from host.profiles.schema import ServerProfile
from integrations.minecraft.connection import rcon_client
from integrations.minecraft.replies import error_reason


@app.command("rcon")
def rcon(
    server: Annotated[str, typer.Argument(help="Server name (from server.toml) or the path of its profile folder")],
    command: Annotated[list[str], typer.Argument(help="The command, without a leading slash")],
) -> None:
    """Run one command on a Minecraft server over RCON, as configured in its server.toml."""
    try:
        profile = _server_profile(server, settings_or_exit().profiles_dir)
        reply = asyncio.run(_run(profile, " ".join(command)))
    except NpcHostError as exc:
        fail(f"rcon: {exc.message}")
    typer.echo(reply)
    reason = error_reason(reply)
    if reason is not None:
        # The reply is the operator's own command echoed back: printed above, the exit code tells scripts.
        fail(f"rcon: the server answered with an error ({reason})")


async def _run(profile: ServerProfile, command: str) -> str:
    async with rcon_client(profile, backoff_initial_s=0.0) as client:
        return await client.command(command)


def _server_profile(server: str, profiles_dir: Path) -> ServerProfile:
    folder = Path(server)
    if folder.is_dir():
        loads = [load_server(folder)]
    else:
        loads = [load for load in load_all(profiles_dir) if load.name == server]
    if not loads:
        raise NpcHostError(f"no server named '{server}' under {profiles_dir}", code="unknown_server")
    load = loads[0]
    if load.server is None:
        problems = "; ".join(str(problem) for problem in load.problems)
        raise NpcHostError(f"server '{server}' does not load: {problems}", code="profile")
    return load.server
