"""The speech role's STT step on the hub: `PlayerUtterance` in, `PlayerSaid` out (nothing when no words were heard).

handler = TranscriptionHandler(bus, WhisperTranscriber(settings.stt), vocabulary=names_near)
await bus.consume(stream_name(server, StreamKind.UTTERANCES), "speech", consumer_name("speech"), handler)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from host.bus import Bus
from host.bus.streams import stream_for
from host.events import Event, PlayerUtterance
from host.speech.audio import WHISPER_RATE, pcm16_to_int16, resample
from host.speech.stt import Transcriber, player_said

log = logging.getLogger(__name__)

Vocabulary = Callable[[PlayerUtterance], Sequence[str]]


def _no_vocabulary(_: PlayerUtterance) -> Sequence[str]:
    return ()


class TranscriptionHandler:
    """A bus handler. `vocabulary(utterance)` names what the speaker may say (the NPCs in hearing range)."""

    def __init__(self, bus: Bus, transcriber: Transcriber, *, vocabulary: Vocabulary = _no_vocabulary) -> None:
        self.bus = bus
        self.transcriber = transcriber
        self.vocabulary = vocabulary

    async def __call__(self, event: Event) -> None:
        if not isinstance(event, PlayerUtterance):
            return
        samples = resample(pcm16_to_int16(event.audio), event.sample_rate, WHISPER_RATE)
        transcript = await self.transcriber.transcribe(samples, vocabulary=self.vocabulary(event))
        said = player_said(event, transcript)
        if said is None:
            log.debug("utterance %s from %s: no words (%s)", event.id, event.player, transcript.dropped)
            return
        await self.bus.publish(stream_for(said), said)
