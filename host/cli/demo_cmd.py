"""`npc-host demo`: the voice scene. Recorded players talk to the example village on the packaged models.

The scene runs the real roles (brain, speech, and the gateway's voice bridge) on the in-process hub, and each
recorded question is said into the bridge by a reference companion plugin over a WebSocket on 127.0.0.1, in real time,
and then nothing (`host/voice/scene.py`): the same path a player's voice takes. Each exchange is printed with its stage
timings and every reply, as the player heard it, is written to `<out>/<n>_<npc>.wav`. The scene runs on a copy of
`npc_profiles/example`, a throwaway database and transcripts under the out folder, so it never touches the user's own
data.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.markup import escape

from host.cli import app
from host.cli.common import fail, run_or_exit, settings_or_exit
from host.config import Settings
from host.demo_assets import load_manifest
from host.events import Position
from host.logs import setup_logging
from host.profiles.schema import NpcProfile
from host.roles.services import HostServices
from host.speech.audio import conform, read_wav, without_trailing_silence, write_wav
from host.voice.scene import SceneTurn, VoiceScene, free_port
from proximity_audio.protocol import SAMPLE_RATE as BRIDGE_RATE

SERVER = "example"
PAUSE_S = 1.0  # between two moments of the scene in real time (--fast: none)
STAND_OFF = 1.5  # blocks between a player and the NPC they talk to

console = Console(highlight=False)


class StageMs(BaseModel):
    """Milliseconds after the end of the player's speech (a typed line: after it was sent); null = not reached."""

    model_config = ConfigDict(extra="forbid")

    stt: float | None
    first_token: float | None
    first_sentence: float | None
    first_audio: float | None
    end_of_speech_to_first_audio: float | None


class DemoTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    npc: str
    player: str
    heard: str
    reply: str
    audio: str | None
    ms: StageMs


class BridgeCounts(BaseModel):
    """What went through the voice bridge's WebSocket during the scene."""

    model_config = ConfigDict(extra="forbid")

    microphone_frames_in: int
    utterances_heard: int
    audio_frames_out: int


class DemoReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    turns: list[DemoTurn]
    bridge: BridgeCounts


@dataclass(frozen=True)
class Spoken:
    recording: str  # a file of host/demo_assets/manifest.json
    note: str = ""


@dataclass(frozen=True)
class Typed:
    player: str
    npc: str
    text: str


SCENE: tuple[Spoken | Typed, ...] = (
    Spoken("bram_room.wav"),
    Spoken("hilde_road.wav"),
    Typed("Alice", "birch", "Old Birch, what do you think of woodcutters?"),
    Spoken("birch_age.wav"),
    Spoken("two_questions.wav", note="Bob asks Bram two things in a row: if Bram is still talking, he is cut off."),
)


@app.command("demo")
def demo(
    report: Annotated[Path | None, typer.Option("--report", help="also write the turns and timings as JSON")] = None,
    out: Annotated[Path, typer.Option("--out", help="folder for the reply WAVs and the transcript")] = Path("demo-out"),
    realtime: Annotated[
        bool, typer.Option("--realtime/--fast", help="--fast leaves out the pauses between the scene's moments")
    ] = True,
) -> None:
    """Play the voice scene: recorded players talk to the example village's NPCs through the voice bridge."""
    settings = settings_or_exit()
    setup_logging(settings.model_copy(update={"log_level": "WARNING"}))
    out.mkdir(parents=True, exist_ok=True)
    played = run_or_exit(_demo(settings, out, realtime))
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(played.model_dump_json(indent=2) + "\n", encoding="utf-8")
        console.print(f"[dim]report written to {report}[/dim]")
    if not any(turn.audio for turn in played.turns):
        fail("the scene produced no NPC audio")


def example_profiles() -> Path:
    """The example village, as installed with the package (in a checkout: its `npc_profiles/example`)."""
    spec = importlib.util.find_spec("npc_profiles")
    # A namespace package: its search locations are folders (editable installs add a non-folder hook entry too).
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    for location in locations:
        village = Path(location) / SERVER
        if (village / "server.toml").is_file():
            return village
    fail(f"the example village (npc_profiles/{SERVER}) is missing from the installation; reinstall npc-host")


async def _demo(settings: Settings, out: Path, realtime: bool) -> DemoReport:
    with tempfile.TemporaryDirectory(prefix="npc-host-demo-") as scratch:
        profiles = Path(scratch) / "profiles"
        shutil.copytree(example_profiles(), profiles / SERVER)
        scene_settings = settings.model_copy(
            update={
                "profiles_dir": profiles,
                "data_dir": Path(scratch) / "data",
                "transcripts_dir": out / "transcripts",
                "database_url": None,
                "redis_url": None,
                "bridge_host": "127.0.0.1",
                "bridge_port": free_port(),
            }
        )
        services = await HostServices.open(scene_settings, watch_profiles=False)
        try:
            return await _play(services, out, realtime)
        finally:
            await services.aclose()


async def _play(services: HostServices, out: Path, realtime: bool) -> DemoReport:
    npcs = services.registry.npcs(SERVER)
    turns: list[DemoTurn] = []
    async with VoiceScene(services, SERVER) as scene:
        console.print("[bold]Loading the models[/bold] (once per process)...")
        with console.status("loading speech-to-text, voices and VAD, and reading every persona once..."):
            await scene.ready()
        console.print("  [green]ready[/green] models loaded, persona prefixes warm, voice bridge listening")
        console.print(f"\n[bold]The scene[/bold] ({'real time' if realtime else 'fast'}): the village of Oakhollow\n")
        manifest = load_manifest()
        for moment in SCENE:
            if isinstance(moment, Typed):
                console.print(f'[bold green]{escape(moment.player)}[/] types: "{escape(moment.text)}"')
                answered = await scene.type(moment.player, _next_to(npcs[moment.npc]), moment.text)
            else:
                recording = manifest.get(moment.recording)
                if moment.note:
                    console.print(f"[dim]{moment.note}[/dim]")
                npc = npcs[recording.npc] if recording.npc else next(iter(npcs.values()))
                # A player's speech, without the digital silence the file ends in: the plugin then sends nothing.
                speech = without_trailing_silence(
                    conform(await asyncio.to_thread(read_wav, recording.path), BRIDGE_RATE)
                )
                answered = await scene.say(recording.player, _next_to(npc), speech)
            for turn in answered:
                turns.append(await _show(turn, npcs[turn.npc], out, len(turns) + 1))
            if realtime:
                await asyncio.sleep(PAUSE_S)
        stats = scene.bridge_stats
        counts = BridgeCounts(
            microphone_frames_in=stats.frames_in,
            utterances_heard=stats.utterances_heard,
            audio_frames_out=stats.frames_out,
        )
    return DemoReport(turns=turns, bridge=counts)


def _next_to(npc: NpcProfile) -> Position:
    spot = npc.world.position
    return Position(x=spot.x + STAND_OFF, y=spot.y, z=spot.z, dimension=npc.world.dimension)


async def _show(turn: SceneTurn, npc: NpcProfile, out: Path, number: int) -> DemoTurn:
    said = turn.said
    if said.source == "voice":
        console.print(f'[bold green]{escape(said.player)}[/] says: "{escape(said.text)}"')
    wav: Path | None = None
    if len(turn.audio):
        wav = out / f"{number}_{npc.id}.wav"
        await asyncio.to_thread(write_wav, wav, turn.audio, BRIDGE_RATE)
    reply = f'"{escape(turn.reply)}"' if turn.reply else "..."
    if turn.interrupted:
        reply += f" [yellow](cut off by {escape(said.player)})[/yellow]"
    console.print(f"  [bold cyan]{npc.name}[/]: {reply}")
    ms = turn.timings.since_origin()
    stages = turn.timings.stages()
    origin = "end of speech" if turn.timings.spoken else "sending"
    parts = [
        f"{name.replace('_', ' ')} {value:.0f}"
        for name, value in ms.items()
        if value is not None and name != "end_of_speech_to_first_audio"
    ]
    line = f"  [dim]ms after {origin}: " + " · ".join(parts)
    if turn.timings.spoken and stages["endpoint_wait"] is not None:
        line += f"  (endpoint wait {stages['endpoint_wait']:.0f}"
        if turn.timings.stt_decode_ms is not None:
            line += f", Whisper {turn.timings.stt_decode_ms:.0f}"
        line += ")"
    if wav is not None:
        line += f"  -> {wav}"
    console.print(line + "[/dim]\n")
    return DemoTurn(
        npc=npc.id,
        player=said.player,
        heard=said.text,
        reply=turn.reply,
        audio=str(wav) if wav is not None else None,
        ms=StageMs(**ms),
    )
