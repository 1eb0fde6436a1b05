"""`npc-host bridge-sim`: play one player through the voice bridge, as a companion plugin would."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Annotated, Literal

import typer
from websockets.exceptions import InvalidURI, WebSocketException

from host.cli import app
from host.errors import NpcHostError
from host.events import Position
from host.speech.audio import conform, read_wav, rms_dbfs, write_wav
from proximity_audio.bridge_client import BridgeRefusedError
from proximity_audio.protocol import SAMPLE_RATE
from proximity_audio.simulated_player import simulate_player

_PLAYER = re.compile(r"^(?P<name>[^@]{1,64})@(?P<x>-?[\d.]+),(?P<y>-?[\d.]+),(?P<z>-?[\d.]+)$")


def parse_player(spec: str, yaw: float, dimension: str) -> tuple[str, Position]:
    match = _PLAYER.match(spec)
    if match is None:
        raise typer.BadParameter(f"{spec!r} is not NAME@X,Y,Z (e.g. Alice@12,64,-30)", param_hint="--player")
    try:
        position = Position(x=float(match["x"]), y=float(match["y"]), z=float(match["z"]), yaw=yaw, dimension=dimension)
    except ValueError:
        raise typer.BadParameter(f"{spec!r} has a coordinate that is not a number", param_hint="--player") from None
    return match["name"], position


@app.command("bridge-sim")
def bridge_sim(
    *,
    player: Annotated[str, typer.Option("--player", help="NAME@X,Y,Z, e.g. Alice@12,64,-30")],
    out: Annotated[Path, typer.Option("--out", "-o", help="WAV file for what the player hears (48 kHz stereo)")],
    token: Annotated[str, typer.Option("--token", envvar="NPC_HOST_BRIDGE_TOKEN", help="The server's bridge token")],
    server: Annotated[str, typer.Option("--server", help="The server's name (its server.toml `name`)")],
    url: Annotated[str, typer.Option("--url", help="The bridge")] = "ws://127.0.0.1:8765/bridge",
    say: Annotated[Path | None, typer.Option("--say", help="A WAV file the player says (any rate)")] = None,
    yaw: Annotated[float, typer.Option("--yaw", help="Facing: 0 south, 90 west, 180 north, 270 east")] = 0.0,
    dimension: Annotated[str, typer.Option("--dimension")] = "minecraft:overworld",
    mode: Annotated[Literal["mixed", "source"], typer.Option("--mode", help="Output mode to ask for")] = "mixed",
    listen_seconds: Annotated[float, typer.Option("--listen-seconds", min=0.0, help="Listen after speaking")] = 10.0,
) -> None:
    """Connect like a companion plugin, say --say in real time at the player's position, write what they hear."""
    name, position = parse_player(player, yaw, dimension)
    try:
        speech = conform(read_wav(say), SAMPLE_RATE) if say is not None else None
        result = asyncio.run(
            simulate_player(
                url,
                server=server,
                token=token,
                player=name,
                position=position,
                say=speech,
                listen_s=listen_seconds,
                mode=mode,
            )
        )
    except BridgeRefusedError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except (NpcHostError, InvalidURI, WebSocketException, OSError) as exc:
        typer.echo(f"error: cannot run the simulation against {url}: {exc}", err=True)
        raise typer.Exit(1) from None
    for error in result.errors:
        typer.echo(f"bridge error {error.code}: {error.message}", err=True)
    write_wav(out, result.heard, SAMPLE_RATE)
    if not result.frames:
        typer.echo(f"wrote {out}: {name} heard nothing")
        return
    left, right = rms_dbfs(result.heard[:, 0]), rms_dbfs(result.heard[:, 1])
    typer.echo(
        f"wrote {out}: {name} heard {', '.join(result.npcs_heard) or 'audio'} in {result.frames} frames "
        f"({len(result.heard) / SAMPLE_RATE:.1f} s; left {left:.1f} dBFS, right {right:.1f} dBFS)"
    )
