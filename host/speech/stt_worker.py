"""The speech role's STT step on the hub: `PlayerPaused` starts a speculative transcription, `PlayerUtterance` ends
in a `PlayerSaid` (nothing when no words were heard), from the speculation when the player said nothing more.

handler = TranscriptionHandler(bus, WhisperTranscriber(settings.stt), vocabulary=names_near)
await bus.consume(stream_name(server, StreamKind.UTTERANCES), "speech", consumer_name("speech"), handler)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from host.bus import Bus
from host.bus.streams import stream_for
from host.events import Event, PlayerPaused, PlayerUtterance
from host.speech.audio import WHISPER_RATE, Int16Array, pcm16_to_int16, resample
from host.speech.speculative import SpeculativeTranscriber
from host.speech.stt import Transcriber, player_said

log = logging.getLogger(__name__)

Heard = PlayerUtterance | PlayerPaused
Vocabulary = Callable[[Heard], Sequence[str]]


def _no_vocabulary(_: Heard) -> Sequence[str]:
    return ()


def _samples(event: Heard) -> Int16Array:
    return resample(pcm16_to_int16(event.audio), event.sample_rate, WHISPER_RATE)


class TranscriptionHandler:
    """A bus handler. `vocabulary(event)` names what the speaker may say (the NPCs in hearing range)."""

    def __init__(self, bus: Bus, transcriber: Transcriber, *, vocabulary: Vocabulary = _no_vocabulary) -> None:
        self.bus = bus
        self.speculative = SpeculativeTranscriber(transcriber)
        self.vocabulary = vocabulary

    async def __call__(self, event: Event) -> None:
        if isinstance(event, PlayerPaused):
            speaker = (event.server, event.player)
            self.speculative.start(speaker, event.utterance_id, _samples(event), self.vocabulary(event))
            return
        if not isinstance(event, PlayerUtterance):
            return
        speaker = (event.server, event.player)
        transcript = await self.speculative.finish(speaker, event.id, _samples(event), self.vocabulary(event))
        said = player_said(event, transcript)
        if said is None:
            log.debug("utterance %s from %s: no words (%s)", event.id, event.player, transcript.dropped)
            return
        await self.bus.publish(stream_for(said), said)

    async def aclose(self) -> None:
        await self.speculative.aclose()
