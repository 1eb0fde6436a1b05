"""`npc-host say SERVER NPC TEXT --out x.wav`: speak a line in an NPC's voice."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from host.brain.sentences import strip_tags
from host.cli import app
from host.cli.common import fail, settings_or_exit
from host.errors import NpcHostError
from host.profiles.loader import load_all
from host.profiles.lookup import UnknownNpcError, find_npc, unknown_server
from host.profiles.schema import NpcProfile
from host.speech.audio import pcm16_to_int16, write_wav
from host.speech.emotions import UnknownEmotionError, known_emotion
from host.speech.tts import PiperSynthesizer


@app.command("say")
def say(
    server: Annotated[str, typer.Argument(help="The server's name (its server.toml `name`)")],
    npc: Annotated[str, typer.Argument(help="The NPC's id, name or alias")],
    text: Annotated[str, typer.Argument(help="What to say; an emotion tag such as [happy] may lead it")],
    *,
    out: Annotated[Path, typer.Option("--out", "-o", help="The WAV file to write")],
    emotion: Annotated[
        str | None, typer.Option("--emotion", "-e", help="An emotion, e.g. happy or sad (unknown ones are refused)")
    ] = None,
    profiles_dir: Annotated[Path | None, typer.Option("--profiles-dir", help="[default: the configured one]")] = None,
) -> None:
    """Write TEXT spoken in the NPC's voice (its model, speed, variation and emotion table) to a WAV file."""
    settings = settings_or_exit()
    profile = _find_npc(profiles_dir or settings.profiles_dir, server, npc)
    spoken, tag = strip_tags(text)
    if not spoken:
        fail("error: TEXT has nothing to say once emotion tags are removed")
    try:
        chosen = known_emotion(emotion or tag, profile.voice)
    except UnknownEmotionError as exc:
        fail(f"error: {exc.message}")
    try:
        audio = asyncio.run(PiperSynthesizer(settings.tts).synthesize(spoken, profile.voice, chosen))
    except NpcHostError as exc:
        fail(f"error: {exc}")
    write_wav(out, pcm16_to_int16(audio.pcm), audio.sample_rate)
    typer.echo(
        f"wrote {out}: {audio.duration_ms / 1000:.1f} s of {profile.name} ({audio.params.emotion}), "
        f"synthesised in {audio.ms:.0f} ms"
    )


def _find_npc(root: Path, server: str, wanted: str) -> NpcProfile:
    try:
        loads = load_all(root)
        load = next((candidate for candidate in loads if candidate.name == server), None)
        if load is None:
            raise unknown_server(server, (candidate.name for candidate in loads), root)
        try:
            return find_npc(load.npcs, server, wanted)
        except UnknownNpcError:
            for problem in load.problems:  # the NPC may be there but not load
                typer.echo(str(problem), err=True)
            raise
    except NpcHostError as exc:
        fail(f"error: {exc}")
