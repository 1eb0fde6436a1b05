"""`npc-host demo`: the voice scene. Recorded players talk to the example village on the packaged models.

Each recorded question (`host/demo_assets/`) streams in 32 ms frames through the VAD, speculative STT, the brain
(addressing picks the NPC) and sentence-level TTS; each exchange is printed with its stage timings as it happens and
every reply is written to `<out>/<n>_<npc>.wav`. The scene runs on a copy of `npc_profiles/example`, a throwaway
database and transcripts under the out folder, so it never touches the user's own data.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import shutil
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.markup import escape

from host.cli import app
from host.cli.common import fail, run_or_exit, settings_or_exit
from host.config import Settings
from host.demo_assets import load_manifest
from host.events import PlayerSaid, Position
from host.logs import setup_logging
from host.profiles.schema import NpcProfile
from host.roles.runner import make_brain
from host.roles.services import HostServices
from host.speech.audio import WHISPER_RATE, conform, pcm16_to_int16, read_wav, write_wav
from host.speech.stt import WhisperTranscriber
from host.speech.tts import PiperSynthesizer
from host.speech.vad import silero_session
from host.voice.exchange import VoiceExchange
from host.voice.pipeline import VoicePipeline
from host.voice.warmup import warm_personas

SERVER = "example"
TRAILING_SILENCE_S = 1.0  # after each recording, so the endpoint is reached while the player is silent
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


class DemoReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    turns: list[DemoTurn]


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
        bool, typer.Option("--realtime/--fast", help="--fast skips every wait but the endpoint wait (same timings)")
    ] = True,
) -> None:
    """Play the voice scene: recorded players talk to the example village's NPCs, who answer aloud."""
    settings = settings_or_exit()
    setup_logging(settings.model_copy(update={"log_level": "WARNING"}))
    out.mkdir(parents=True, exist_ok=True)
    turns = run_or_exit(_demo(settings, out, realtime))
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(DemoReport(turns=turns).model_dump_json(indent=2) + "\n", encoding="utf-8")
        console.print(f"[dim]report written to {report}[/dim]")
    if not any(turn.audio for turn in turns):
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


async def _demo(settings: Settings, out: Path, realtime: bool) -> list[DemoTurn]:
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
            }
        )
        services = await HostServices.open(scene_settings, watch_profiles=False)
        try:
            return await _play(services, out, realtime)
        finally:
            await services.aclose()


async def _timed(label: str, work: Awaitable[object]) -> None:
    started = time.perf_counter()
    await work
    console.print(f"  [green]ready[/green] {label} [dim]({time.perf_counter() - started:.1f} s)[/dim]")


async def _play(services: HostServices, out: Path, realtime: bool) -> list[DemoTurn]:
    settings = services.settings
    brain = make_brain(services)
    npcs = services.registry.npcs(SERVER)
    transcriber = WhisperTranscriber(settings.stt)
    synthesizer = PiperSynthesizer(settings.tts, voices_dir=settings.profiles_dir / SERVER)
    console.print("[bold]Loading the models[/bold] (once per process)...")
    with console.status("loading speech-to-text, voices and VAD..."):
        await asyncio.gather(
            _timed("speech to text (faster-whisper)", transcriber.load()),
            _timed("voices (Piper)", asyncio.gather(*(synthesizer.load(npc.voice) for npc in npcs.values()))),
            _timed("voice activity detection (Silero)", asyncio.to_thread(silero_session)),
        )
    with console.status("loading the language model and reading every persona once..."):
        warmed = await warm_personas(brain, SERVER)
    console.print(
        "  [green]ready[/green] persona prefixes warm: "
        + ", ".join(f"{npcs[npc_id].name} {ms / 1000:.1f} s" for npc_id, ms in warmed.items())
    )
    console.print(f"\n[bold]The scene[/bold] ({'real time' if realtime else 'fast'}): the village of Oakhollow\n")

    turns: list[DemoTurn] = []

    async def heard(said: PlayerSaid) -> None:
        how = "says" if said.source == "voice" else "types"
        console.print(f'[bold green]{escape(said.player)}[/] {how}: "{escape(said.text)}"')

    numbers = itertools.count(1)

    async def answered(exchange: VoiceExchange) -> None:
        turns.append(await _show(exchange, out, next(numbers)))

    pipeline = VoicePipeline(
        brain,
        transcriber,
        synthesizer,
        SERVER,
        vad=settings.vad,
        realtime=realtime,
        on_heard=heard,
        on_exchange=answered,
    )
    manifest = load_manifest()
    for moment in SCENE:
        if isinstance(moment, Typed):
            await pipeline.type(moment.player, _next_to(npcs[moment.npc]), moment.text)
            continue
        recording = manifest.get(moment.recording)
        if moment.note:
            console.print(f"[dim]{moment.note}[/dim]")
        npc = npcs[recording.npc] if recording.npc else next(iter(npcs.values()))
        samples = conform(read_wav(recording.path), WHISPER_RATE)
        audio = np.concatenate((samples, np.zeros(int(TRAILING_SILENCE_S * WHISPER_RATE), dtype=np.int16)))
        await pipeline.listen(recording.player, _next_to(npc), audio)
    return turns


def _next_to(npc: NpcProfile) -> Position:
    spot = npc.world.position
    return Position(x=spot.x + STAND_OFF, y=spot.y, z=spot.z, dimension=npc.world.dimension)


async def _show(exchange: VoiceExchange, out: Path, number: int) -> DemoTurn:
    npc = exchange.npc
    wav: Path | None = None
    if exchange.audio:
        wav = out / f"{number}_{npc.id}.wav"
        # Off the event loop: another turn may be answering (and being timed) while this one is saved.
        await asyncio.to_thread(write_wav, wav, pcm16_to_int16(exchange.audio), exchange.sample_rate)
    reply = f'"{escape(exchange.reply)}"' if exchange.reply else "..."
    if exchange.interrupted:
        said, planned = exchange.sentences_said, exchange.sentences_planned
        reply += (
            f" [yellow](cut off by {escape(exchange.said.player)}: {said} of {planned} sentence(s) spoken)[/yellow]"
        )
    console.print(f"  [bold cyan]{npc.name}[/]: {reply}")
    ms = exchange.timings.since_origin()
    stages = exchange.timings.stages()
    origin = "end of speech" if exchange.timings.spoken else "sending"
    parts = [
        f"{name.replace('_', ' ')} {value:.0f}"
        for name, value in ms.items()
        if value is not None and name != "end_of_speech_to_first_audio"
    ]
    line = f"  [dim]ms after {origin}: " + " · ".join(parts)
    if exchange.transcript is not None and stages["endpoint_wait"] is not None:
        line += f"  (endpoint wait {stages['endpoint_wait']:.0f}, Whisper {exchange.transcript.ms:.0f})"
    if wav is not None:
        line += f"  -> {wav}"
    console.print(line + "[/dim]\n")
    return DemoTurn(
        npc=npc.id,
        player=exchange.said.player,
        heard=exchange.heard,
        reply=exchange.reply,
        audio=str(wav) if wav is not None else None,
        ms=StageMs(**ms),
    )
