"""The speech role's STT step on the hub: `PlayerPaused` starts a speculative transcription, `PlayerUtterance` ends
in a `PlayerSaid` (nothing when no words were heard), from the speculation when the player said nothing more.

A speculative transcript that is done while the utterance has not ended yet is published at once as a
`PlayerSaidTentative` (with a held first part in front, as the line would be published), so the brain can start the
answer during the rest of the endpoint wait (host/brain/speculation.py).

A line that sounds unfinished (`hold_for` gives it a hold, host/speech/turn_taking.py) is kept that long after its
utterance ended; if the player speaks again in that time (`spoke_since`), it waits for their next utterance and the
two are published as one line, so the host never answers half a question. Otherwise it is published as it is.

handler = TranscriptionHandler(bus, WhisperTranscriber(settings.stt), vocabulary=names_near)
await bus.consume(stream_name(server, StreamKind.UTTERANCES), "speech", consumer_name("speech"), handler)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from host.bus import Bus
from host.bus.streams import stream_for
from host.events import MAX_PLAYER_TEXT_CHARS, Event, PlayerPaused, PlayerSaid, PlayerSaidTentative, PlayerUtterance
from host.speech.audio import WHISPER_RATE, Int16Array, pcm16_to_int16, resample
from host.speech.speculative import SpeculativeTranscriber
from host.speech.stt import Transcriber, Transcript, player_said, spoken_language

log = logging.getLogger(__name__)

Heard = PlayerUtterance | PlayerPaused
Vocabulary = Callable[[Heard], Sequence[str]]
HoldFor = Callable[[PlayerSaid], float]  # seconds to hold a line after its utterance ended; 0: publish at once
SpokeSince = Callable[[str, str, float], bool]  # (server, player, ts): the player started speaking after ts
# A held line whose player went on speaking waits this long at most for the rest (an utterance the bridge never
# reports: the player walked out of every NPC's hearing range while speaking).
REST_WAIT_S = 20.0


def _no_vocabulary(_: Heard) -> Sequence[str]:
    return ()


def _no_hold(_: PlayerSaid) -> float:
    return 0.0


def _never(_server: str, _player: str, _ts: float) -> bool:
    return False


def _samples(event: Heard) -> Int16Array:
    return resample(pcm16_to_int16(event.audio), event.sample_rate, WHISPER_RATE)


class TranscriptionHandler:
    """A bus handler. `vocabulary(event)` names what the speaker may say (the NPCs in hearing range)."""

    def __init__(
        self,
        bus: Bus,
        transcriber: Transcriber,
        *,
        vocabulary: Vocabulary = _no_vocabulary,
        hold_for: HoldFor = _no_hold,
        spoke_since: SpokeSince = _never,
    ) -> None:
        self.bus = bus
        self.speculative = SpeculativeTranscriber(transcriber)
        self.vocabulary = vocabulary
        self.hold_for = hold_for
        self.spoke_since = spoke_since
        self._held: dict[tuple[str, str], PlayerSaid] = {}  # one line per speaker at most
        self._releases: set[asyncio.Task[None]] = set()
        self._tentative: dict[tuple[str, str], asyncio.Task[None]] = {}  # one early transcript per speaker at most

    @property
    def holding(self) -> bool:
        """Some line is held for its player to go on."""
        return bool(self._held)

    async def __call__(self, event: Event) -> None:
        if isinstance(event, PlayerPaused):
            speaker = (event.server, event.player)
            run = self.speculative.start(speaker, event.utterance_id, _samples(event), self.vocabulary(event))
            if (earlier := self._tentative.pop(speaker, None)) is not None:
                earlier.cancel()
            announce = asyncio.create_task(self._announce(event, run), name=f"tentative-{event.utterance_id[:8]}")
            self._tentative[speaker] = announce
            announce.add_done_callback(lambda done: self._forget_tentative(speaker, done))
            return
        if not isinstance(event, PlayerUtterance):
            return
        speaker = (event.server, event.player)
        transcript = await self.speculative.finish(speaker, event.id, _samples(event), self.vocabulary(event))
        said = player_said(event, transcript)
        held = self._held.pop(speaker, None)
        if held is not None:  # the first part of this line, held for the player to go on
            said = held if said is None else said.model_copy(update={"text": f"{held.text} {said.text}"})
        if said is None:
            log.debug("utterance %s from %s: no words (%s)", event.id, event.player, transcript.dropped)
            return
        hold_s = self.hold_for(said)
        if hold_s <= 0:
            await self._publish(said)
            return
        self._held[speaker] = said
        release = asyncio.create_task(self._release(speaker, said, event.ts + hold_s), name=f"hold-{event.id[:8]}")
        self._releases.add(release)
        release.add_done_callback(self._releases.discard)

    async def _announce(self, paused: PlayerPaused, run: asyncio.Task[Transcript]) -> None:
        """Publish the speculative transcript as a tentative line if it is in before the utterance ended."""
        speaker = (paused.server, paused.player)
        await asyncio.wait({run})
        if run.cancelled() or run.exception() is not None or not self.speculative.pending(speaker, run):
            return  # replaced, or the utterance ended first: its PlayerSaid carries the text
        transcript = run.result()
        if transcript.empty:
            return
        text = transcript.text
        if (held := self._held.get(speaker)) is not None:
            text = f"{held.text} {text}"
        tentative = PlayerSaidTentative(
            server=paused.server,
            player=paused.player,
            text=text[:MAX_PLAYER_TEXT_CHARS],  # as PlayerSaid cuts it, so the two compare equal
            position=paused.position,
            language=spoken_language(transcript),
            utterance_id=paused.utterance_id,
            speech_end_ts=paused.speech_end_ts,
        )
        await self.bus.publish(stream_for(tentative), tentative)

    def _forget_tentative(self, speaker: tuple[str, str], task: asyncio.Task[None]) -> None:
        if self._tentative.get(speaker) is task:
            del self._tentative[speaker]
        if not task.cancelled() and (error := task.exception()) is not None:
            log.warning("tentative line of %s not published: %r", speaker[1], error)

    async def _release(self, speaker: tuple[str, str], said: PlayerSaid, at: float) -> None:
        """Publish a held line at `at` unless its player went on speaking (then the next utterance completes it)."""
        await asyncio.sleep(max(0.0, at - time.time()))
        if self._held.get(speaker) is not said:
            return  # already joined to the rest of the line
        if self.spoke_since(*speaker, said.endpoint_ts or said.ts):
            await asyncio.sleep(REST_WAIT_S)
            if self._held.get(speaker) is not said:
                return
        del self._held[speaker]
        await self._publish(said)

    async def _publish(self, said: PlayerSaid) -> None:
        await self.bus.publish(stream_for(said), said)

    async def aclose(self) -> None:
        pending = [*self._releases, *self._tentative.values()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self.speculative.aclose()
