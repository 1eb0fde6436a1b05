"""`npc-host chat SERVER NPC`: talk to a character in the terminal, through the same brain the game uses."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console

from host.brain.engine import NpcBrain, StartedTurn
from host.brain.turn import TurnSentence
from host.cli import app
from host.cli.common import fail, run_or_exit, settings_or_exit
from host.config import Settings
from host.events import PlayerSaid
from host.logs import profile_secret_envs, setup_logging
from host.profiles.schema import NpcProfile
from host.roles.runner import make_brain
from host.roles.services import HostServices

console = Console(highlight=False)


@app.command("chat")
def chat(
    server: str = typer.Argument(help="server folder name under the profiles directory"),
    npc: str = typer.Argument(help="the NPC's id, name or alias (any case)"),
    player: str = typer.Option("Traveler", "--as", help="your player name"),
    once: str | None = typer.Option(None, "--once", help="say one line, print the reply, exit"),
) -> None:
    """Talk to an NPC in the terminal; its replies stream sentence by sentence."""
    settings = settings_or_exit()
    setup_logging(settings.model_copy(update={"log_level": "WARNING"}), profile_secret_envs(settings.profiles_dir))
    if not run_or_exit(_chat(settings, server, npc, player, once)):
        fail("the NPC gave no reply")


async def _chat(settings: Settings, server: str, npc_id: str, player: str, once: str | None) -> bool:
    console.print("[dim]loading profiles, database and model...[/dim]")
    services = await HostServices.open(settings)
    try:
        npc = services.registry.find_npc(server, npc_id)
        brain = make_brain(services)
        if once is not None:
            return await _say(brain, server, npc, player, once)
        if npc.persona.first_message:
            console.print(f"[bold cyan]{npc.name}[/]: {npc.persona.first_message}")
        while True:
            try:
                line = await asyncio.to_thread(console.input, f"[bold green]{player}[/]> ")
            except EOFError:
                return True
            if line.strip() in {"/quit", "/exit"}:
                return True
            if line.strip():
                await _say(brain, server, npc, player, line)
    finally:
        await services.aclose()


async def _say(brain: NpcBrain, server: str, npc: NpcProfile, player: str, text: str) -> bool:
    said = PlayerSaid(server=server, player=player, text=text, source="chat")
    console.print(f"[bold cyan]{npc.name}[/]: ", end="")

    async def show(_turn: StartedTurn, sentence: TurnSentence) -> None:
        mood = f"[dim]({sentence.emotion})[/dim] " if sentence.emotion else ""
        console.print(f"{mood}{sentence.text} ", end="")

    ended = await brain.answer(said, npc.id, show)
    console.print()
    if ended is not None:
        stages = ", ".join(f"{stage} {ms:.0f} ms" for stage, ms in ended.timings_ms.items())
        console.print(f"[dim]{stages}[/dim]")
    return ended is not None and bool(ended.reply)
