"""One NPC's spoken answer in the in-process voice pipeline: the audio sink of the turn and what it produced."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from host.events import PlayerSaid
from host.profiles.schema import NpcProfile
from host.speech.speaker import SpokenChunk
from host.speech.stt import Transcript
from host.voice.timings import VoiceTimings


@dataclass(frozen=True)
class VoiceExchange:
    """A player's line and one NPC's answer as it was heard: `reply` holds only the sentences whose audio was
    delivered, so an interrupted answer shows where it was cut."""

    said: PlayerSaid
    npc: NpcProfile
    reply: str
    sentences_said: int  # sentences whose audio was delivered
    sentences_planned: int  # sentences the brain handed over, delivered or not
    interrupted: bool
    audio: bytes  # mono PCM16 of everything delivered, at `sample_rate`
    sample_rate: int
    timings: VoiceTimings
    transcript: Transcript | None  # None for a typed line
    tts_ms: float  # synthesis time of the delivered audio
    tts_audio_ms: float  # its duration

    @property
    def heard(self) -> str:
        return self.said.text


@dataclass
class TurnAudio:
    """The audio sink of one turn: keeps the PCM, marks the first chunk, and with `realtime` takes as long as the
    chunk plays (a loudspeaker), which is what gives a player the time to barge in."""

    timings: VoiceTimings
    realtime: bool
    answering: asyncio.Event  # set at the first chunk (the NPC is audibly answering) or when the turn is over
    chunks: list[bytes] = field(default_factory=list)
    sample_rate: int = 0
    synthesis_ms: float = 0.0
    audio_ms: float = 0.0
    stopped: bool = False  # a barge-in: nothing more reaches the sink

    async def play(self, chunk: SpokenChunk) -> None:
        if self.stopped:
            return
        if self.timings.first_audio is None:
            self.timings.first_audio = time.time()
            self.answering.set()
        self.chunks.append(chunk.audio.pcm)
        self.sample_rate = chunk.audio.sample_rate
        self.synthesis_ms += chunk.audio.ms
        self.audio_ms += chunk.audio.duration_ms
        if self.realtime:
            await asyncio.sleep(chunk.audio.duration_ms / 1000.0)

    @property
    def pcm(self) -> bytes:
        return b"".join(self.chunks)
