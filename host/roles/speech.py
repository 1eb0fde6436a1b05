"""The speech role: players' voices in (STT), NPCs' voices out (TTS), and barge-in.

Streams (per server), each read through the group "speech":
- `utterances`: `PlayerPaused` -> a speculative transcription (published as `PlayerSaidTentative` when it is done
  before the utterance ended, so the brain can start the answer), `PlayerUtterance` -> `PlayerSaid` (from the
  speculation when the player said nothing more; `TranscriptionHandler`), with the names of the NPCs whose hearing
  range contains the speaker as Whisper's vocabulary; a line that sounds unfinished waits the server's
  `[turn_taking] unfinished_hold_ms` for the player to go on (then the two utterances are one line);
- `turns`: `NpcSentence` -> that turn's `SentenceSpeaker` (the NPC's voice, the sentence's emotion), which publishes
  `NpcAudio` chunks as they are synthesised (a sentence the brain in this process had made ahead for a speculative
  answer, host/voice/speech_ahead.py, is taken as made); `NpcTurnEnded` -> the speaker finishes its queue and is
  dropped;
- `control`: `NpcTurnCut` -> that turn's speaker stops (barge-in, decided by the voice bridge, or an operator's
  stop): its pending sentences are dropped and nothing more is published for it, late sentences included;
  `PlayerSpeechStarted` -> remembered, so a held unfinished line waits for the rest (not a barge-in here).

A turn's sentences must reach one speaker in order, so when several speech processes share the hub, each turn's
audio is made wherever its sentences land; run one speech process per server for voice that never splits a turn.
Models load once per process, in the background while the consumers start; handlers wait for them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from host.bus.streams import StreamKind, consumer_name, stream_for, stream_name
from host.errors import NpcHostError
from host.events import (
    Event,
    NpcAudio,
    NpcSentence,
    NpcTurnCut,
    NpcTurnEnded,
    PlayerLeft,
    PlayerPaused,
    PlayerSaid,
    PlayerSpeechStarted,
    PlayerUtterance,
)
from host.player_state import PlayerMemory
from host.profiles.registry import UnknownNpcError
from host.roles.services import HostServices
from host.speech.speaker import SentenceSpeaker, SpokenChunk
from host.speech.stt import Transcriber, WhisperTranscriber
from host.speech.stt_worker import TranscriptionHandler
from host.speech.tts import PiperSynthesizer
from host.speech.turn_taking import sounds_unfinished
from host.voice.hearing import names_in_earshot

log = logging.getLogger(__name__)

GROUP = "speech"
REMEMBERED_TURNS = 1024  # turn ids kept to recognise late sentences of stopped or started turns


@dataclass
class _TurnSpeech:
    server: str
    npc: str
    player: str
    turn_id: str
    speaker: SentenceSpeaker | None = None
    sentence_index: list[int] = field(default_factory=list)  # speaker's index -> the sentence's index in the turn
    stopped: bool = False


class _Recent(OrderedDict[str, float]):
    """Turn ids with a timestamp, the oldest forgotten beyond `REMEMBERED_TURNS`."""

    def remember(self, turn_id: str, ts: float) -> None:
        self[turn_id] = ts
        while len(self) > REMEMBERED_TURNS:
            self.popitem(last=False)


class SpeechRole:
    name = "speech"

    def __init__(
        self,
        services: HostServices,
        *,
        transcriber: Transcriber | None = None,
        synthesizer: PiperSynthesizer | None = None,
    ) -> None:
        settings = services.settings
        self.services = services
        self.whisper = WhisperTranscriber(settings.stt)
        self.transcriber = transcriber or self.whisper
        self.synthesizer = synthesizer or PiperSynthesizer(settings.tts, voices_dir=settings.profiles_dir)
        self._turns: dict[str, _TurnSpeech] = {}
        self.stopped = _Recent()  # turn ids cut off (barge-in, stop) or given up: nothing more is said for them
        # (server, player) -> when they last started speaking; forgotten with the player (host/player_state.py)
        self.spoke_at: PlayerMemory[tuple[str, str], float] = PlayerMemory()
        self._loading: asyncio.Task[None] | None = None
        self.loaded = asyncio.Event()  # the models are loaded (a voice that failed to load is logged and skipped)
        self._tasks: asyncio.TaskGroup | None = None

    async def run(self, stop: asyncio.Event) -> None:
        bus = self.services.bus
        consumer = consumer_name(self.name)
        transcribe = TranscriptionHandler(
            bus,
            self.transcriber,
            vocabulary=self._vocabulary,
            hold_for=self._hold_for,
            spoke_since=lambda server, player, ts: self.spoke_at.get((server, player), 0.0) > ts,
        )

        async def on_utterance(event: Event) -> None:
            await self.ready()
            await transcribe(event)

        self.services.first_audio.speech_here = True  # the brain in this process waits for first audio (see there)
        self.services.speech_ahead.synthesizer = self.synthesizer  # and has held sentences synthesised ahead
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                self._loading = tasks.create_task(self._load_models(), name="speech-models")
                for server in self.services.registry.server_names():
                    streams = {kind: stream_name(server, kind) for kind in StreamKind}
                    handlers = {
                        StreamKind.UTTERANCES: on_utterance,
                        StreamKind.TURNS: self.on_turn_event,
                        StreamKind.CONTROL: self.on_control,
                    }
                    for kind, handler in handlers.items():
                        tasks.create_task(bus.consume(streams[kind], GROUP, consumer, handler, stop=stop))
                await stop.wait()
                self._loading.cancel()  # a model still loading is left to its thread: stopping never waits for it
                for turn_id in list(self._turns):
                    self._stop(turn_id)
        finally:
            self.services.first_audio.speech_here = False
            self.services.speech_ahead.synthesizer = None
            self.services.speech_ahead.clear()
            self._tasks = None
            await transcribe.aclose()

    @property
    def speaking_turns(self) -> set[str]:
        """Turns whose sentences are being spoken or queued."""
        return set(self._turns)

    async def ready(self) -> None:
        """Wait until the models are loaded (at once when they are)."""
        if self._loading is not None:
            await asyncio.shield(self._loading)

    async def _load_models(self) -> None:
        started = time.perf_counter()
        if self.transcriber is self.whisper:
            log.info("speech: loading the speech-to-text model (%s)", self.whisper.model_path)
            await self.whisper.load()
        voices = {
            self.synthesizer.voice_paths(npc.voice)[0]: npc.voice
            for server in self.services.registry.server_names()
            for npc in self.services.registry.npcs(server).values()
        }
        log.info("speech: loading %d voice(s)", len(voices))
        for path, voice in voices.items():
            try:
                await self.synthesizer.load(voice)
            except NpcHostError as exc:  # that NPC stays silent; the others still speak
                log.error("speech: voice %s: %s", path, exc.message)
        log.info("speech: models ready in %.1f s", time.perf_counter() - started)
        self.services.progress.done("speech models")
        self.loaded.set()

    def _hold_for(self, said: PlayerSaid) -> float:
        """The server's extra wait after a line that sounds unfinished (`[turn_taking]`); none after others."""
        if not sounds_unfinished(said.text):
            return 0.0
        return self.services.registry.server(said.server).turn_taking.unfinished_hold_ms / 1000.0

    def _vocabulary(self, utterance: PlayerUtterance | PlayerPaused) -> list[str]:
        npcs = self.services.registry.npcs(utterance.server).values()
        return names_in_earshot(npcs, utterance.server, utterance.player, utterance.position)

    # --- turns: sentences in, audio out ---------------------------------------------------------------------------

    async def on_turn_event(self, event: Event) -> None:
        if isinstance(event, NpcSentence):
            await self.ready()
            self._say(event)
        elif isinstance(event, NpcTurnEnded):
            self._end(event)

    def _say(self, sentence: NpcSentence) -> None:
        if sentence.turn_id in self.stopped:
            self.services.first_audio.out(sentence.turn_id)  # none will come: the brain need not wait for it
            return
        turn = self._turns.get(sentence.turn_id)
        if turn is None:
            turn = self._turns[sentence.turn_id] = _TurnSpeech(
                sentence.server, sentence.npc, sentence.player, sentence.turn_id
            )
        if turn.sentence_index and sentence.index <= turn.sentence_index[-1]:
            return  # said already (a redelivered sentence)
        if turn.speaker is None:
            try:
                npc = self.services.registry.npc(sentence.server, sentence.npc)
            except UnknownNpcError as exc:
                log.warning("turn %s: %s; its sentences are not spoken", sentence.turn_id, exc.message)
                self._stop(sentence.turn_id)
                return
            speech = self.services.speech_ahead  # a speculative turn's first sentence may be made already
            turn.speaker = SentenceSpeaker(speech, npc.voice, functools.partial(self._publish, turn))
        turn.sentence_index.append(sentence.index)
        turn.speaker.say(sentence.text, sentence.emotion)

    async def _publish(self, turn: _TurnSpeech, chunk: SpokenChunk) -> None:
        if turn.stopped:
            return
        audio = NpcAudio(
            server=turn.server,
            npc=turn.npc,
            turn_id=turn.turn_id,
            index=turn.sentence_index[chunk.index],
            audio=chunk.audio.pcm,
            sample_rate=chunk.audio.sample_rate,
            final=chunk.final,
        )
        await self.services.bus.publish(stream_for(audio), audio)
        self.services.first_audio.out(turn.turn_id)  # the brain may read on (a no-op after the first chunk)

    def _end(self, ended: NpcTurnEnded) -> None:
        turn = self._turns.get(ended.turn_id)
        if turn is None:
            return
        if ended.interrupted or turn.speaker is None:
            self._stop(ended.turn_id)
        else:
            # The turn stays listed until its last sentence is spoken: the reply is written long before it is
            # heard, and a barge-in in that time must still silence the rest.
            self._track(self._finish(turn, turn.speaker), f"finish-{ended.turn_id[:8]}")

    async def _finish(self, turn: _TurnSpeech, speaker: SentenceSpeaker) -> None:
        try:
            await speaker.finish()
        except NpcHostError as exc:  # a voice that cannot speak (file gone, bad speaker id) ends this turn only
            log.error("turn %s of %s: %s", turn.turn_id, turn.npc, exc.message)
            self.services.first_audio.out(turn.turn_id)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not turn.stopped or (current is not None and current.cancelling()):
                raise
            # A barge-in cancelled the speaker's work while this waited for it: the turn is over.
        finally:
            if self._turns.get(turn.turn_id) is turn:
                del self._turns[turn.turn_id]

    # --- barge-in: the bridge decides, this role stops the turn it names --------------------------------------------

    async def on_control(self, event: Event) -> None:
        if isinstance(event, PlayerLeft):
            self.spoke_at.forget((event.server, event.player))
        elif isinstance(event, PlayerSpeechStarted):
            self.spoke_at[(event.server, event.player)] = event.ts
        elif isinstance(event, NpcTurnCut):
            if event.turn_id in self._turns:
                log.info("turn of %s for %s cut off; its speech stops", event.npc, event.player)
            self._stop(event.turn_id)

    def _stop(self, turn_id: str) -> None:
        self.stopped.remember(turn_id, time.time())
        self.services.first_audio.out(turn_id)
        turn = self._turns.pop(turn_id, None)
        if turn is None:
            return
        turn.stopped = True
        if turn.speaker is not None:
            turn.speaker.interrupt()
            self._track(turn.speaker.aclose(), f"stop-{turn_id[:8]}")

    def _track(self, work: Coroutine[Any, Any, None], name: str) -> None:
        if self._tasks is None:
            work.close()
            raise RuntimeError("the speech role is not running")
        self._tasks.create_task(work, name=name)
