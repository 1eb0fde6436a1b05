"""The voice turn in one process, as `npc-host demo` and `bench/voice.py` run it:

    player audio, 32 ms frames -> StreamingVad -> SpeculativeTranscriber -> NpcBrain.answer (addressing picks the NPC)
        -> SentenceSpeaker (each sentence synthesised as it arrives) -> TurnAudio sink, with stage timings

The player keeps being heard while an NPC answers: a `SpeechStarted` from the player the NPC is talking to stops it
(barge-in: the LLM stream and pending sentences are dropped, the sink gets nothing more).

Pacing. `realtime=True` feeds frames as a microphone would (one every 32 ms) and plays the reply audio at its own
speed. `realtime=False` skips every wait except the endpoint wait: from the moment the VAD reports a pause the frames
go at microphone speed again, anchored at the end of the speech, so speculative STT and the endpointing overlap
exactly as live and the latencies equal live ones; after an utterance ends, the next audio waits for the NPC's
first chunk of reply, so a barge-in still lands while it is answering.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from host.brain.engine import NpcBrain, StartedTurn
from host.brain.turn import TurnSentence
from host.config import VADSettings
from host.events import PlayerSaid, PlayerUtterance, Position
from host.speech.audio import WHISPER_RATE, Int16Array, int16_to_pcm16, split_frames
from host.speech.speaker import SentenceSpeaker
from host.speech.speculative import SpeculativeTranscriber
from host.speech.stt import Transcriber, Transcript, player_said
from host.speech.tts import Synthesizer
from host.speech.vad import SilenceStarted, SpeechResumed, SpeechStarted, StreamingVad, UtteranceEnded, VadEvent
from host.voice.exchange import TurnAudio, VoiceExchange
from host.voice.hearing import names_in_earshot
from host.voice.timings import VoiceTimings

FRAME_SAMPLES = 512  # 32 ms at 16 kHz, the VAD's window

OnHeard = Callable[[PlayerSaid], Awaitable[None]]
OnExchange = Callable[[VoiceExchange], Awaitable[None]]


class AudioClock:
    """Maps the audio clock (samples fed) to wall time, so frames can be fed when a microphone would deliver them."""

    def __init__(self) -> None:
        self.anchor(0)

    def anchor(self, sample: int) -> None:
        """`sample` is now."""
        self._sample = sample
        self._wall = time.time()

    async def wait_until(self, sample: int) -> None:
        delay = self._wall + (sample - self._sample) / WHISPER_RATE - time.time()
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass
class _PlayerStream:
    """One `listen` call: the player, where they stand, their speculative STT and the turns their speech started."""

    player: str
    position: Position | None
    speculative: SpeculativeTranscriber
    turns: list[asyncio.Task[list[VoiceExchange]]] = field(default_factory=list)


@dataclass
class _Speaking:
    speaker: SentenceSpeaker
    sink: TurnAudio


class VoicePipeline:
    """Voice turns on one server through `brain`. One `listen` per player stream at a time."""

    def __init__(
        self,
        brain: NpcBrain,
        transcriber: Transcriber,
        synthesizer: Synthesizer,
        server: str,
        *,
        vad: VADSettings | None = None,
        realtime: bool = True,
        on_heard: OnHeard | None = None,
        on_exchange: OnExchange | None = None,
    ) -> None:
        self.brain = brain
        self.transcriber = transcriber
        self.synthesizer = synthesizer
        self.server = server
        self.vad_settings = vad or VADSettings()
        self.realtime = realtime
        self._on_heard = on_heard
        self._on_exchange = on_exchange
        self._speaking: dict[str, _Speaking] = {}  # player -> the NPC answering them

    async def listen(self, player: str, position: Position | None, audio: Int16Array) -> list[VoiceExchange]:
        """Stream a player's 16 kHz mono audio through the pipeline; returns the exchanges once all are over."""
        vad = StreamingVad(self.vad_settings)
        names = names_in_earshot(self.brain.registry.npcs(self.server).values(), self.server, player, position)
        stream = _PlayerStream(player, position, SpeculativeTranscriber(self.transcriber, vocabulary=names))
        clock = AudioClock()
        pacing = self.realtime
        fed = 0
        try:
            async with asyncio.TaskGroup() as group:
                for frame in split_frames(audio, FRAME_SAMPLES, pad_last=True):
                    if pacing:
                        await clock.wait_until(fed + len(frame))
                    else:
                        await asyncio.sleep(0)  # let the turns in flight run between frames
                    fed += len(frame)
                    for event in vad.feed(frame, wall_ts=time.time()):
                        if not self.realtime:
                            pacing = await self._fast_pacing(event, clock, fed, pacing)
                        answering = self._on_vad_event(event, stream, group)
                        if answering is not None and not self.realtime:
                            await answering.wait()
                for event in vad.flush():
                    self._on_vad_event(event, stream, group)
        finally:
            await stream.speculative.aclose()
        return [exchange for turn in stream.turns for exchange in turn.result()]

    async def type(self, player: str, position: Position | None, text: str) -> list[VoiceExchange]:
        """A typed chat line: the same turn without the listening part."""
        said = PlayerSaid(server=self.server, player=player, text=text, source="chat", position=position)
        if self._on_heard is not None:
            await self._on_heard(said)
        return await self._respond(said, VoiceTimings.typed(), None, asyncio.Event())

    def barge_in(self, player: str) -> bool:
        """Stop the NPC answering `player`: its LLM stream, pending sentences and audio. True if one was."""
        stopped = self.brain.interrupt(self.server, player)
        speaking = self._speaking.pop(player, None)
        if speaking is not None:
            speaking.sink.stopped = True
            speaking.speaker.interrupt()
        return stopped or speaking is not None

    @staticmethod
    async def _fast_pacing(event: VadEvent, clock: AudioClock, fed: int, pacing: bool) -> bool:
        """Without real time: the pause after speech runs at microphone speed from the end of the speech on."""
        if isinstance(event, SilenceStarted):
            clock.anchor(event.sample)
            await clock.wait_until(fed)  # the pause so far, skipped while feeding fast, is waited for now
            return True
        if isinstance(event, SpeechResumed | UtteranceEnded):
            return False
        return pacing

    def _on_vad_event(self, event: VadEvent, stream: _PlayerStream, group: asyncio.TaskGroup) -> asyncio.Event | None:
        """Handle one VAD event; returns the new turn's 'answering' event when an utterance ended."""
        stream.speculative.on_event(event)
        if isinstance(event, SpeechStarted):
            self.barge_in(stream.player)
            return None
        if not isinstance(event, UtteranceEnded):
            return None
        timings = VoiceTimings(origin=event.wall_ts, spoken=True, endpoint=time.time())
        answering = asyncio.Event()
        turn = self._voice_turn(stream, event, timings, answering)
        stream.turns.append(group.create_task(turn, name=f"voice-turn-{stream.player}"))
        return answering

    async def _voice_turn(
        self, stream: _PlayerStream, ended: UtteranceEnded, timings: VoiceTimings, answering: asyncio.Event
    ) -> list[VoiceExchange]:
        try:
            transcript = await stream.speculative.finish(ended)
            timings.transcript = time.time()
            timings.stt_decode_ms = transcript.ms
            # The event the voice bridge would publish for this utterance, so the line is built the hub's way.
            utterance = PlayerUtterance(
                server=self.server,
                player=stream.player,
                position=stream.position,
                audio=int16_to_pcm16(ended.audio),
                sample_rate=WHISPER_RATE,
                speech_end_ts=ended.wall_ts,
            )
            said = player_said(utterance, transcript)
            if said is None:
                return []
            if self._on_heard is not None:
                await self._on_heard(said)
            return await self._respond(said, timings, transcript, answering)
        finally:
            answering.set()

    async def _respond(
        self, said: PlayerSaid, timings: VoiceTimings, transcript: Transcript | None, answering: asyncio.Event
    ) -> list[VoiceExchange]:
        addressing = self.brain.addressing(said)
        if not addressing.responders:
            if addressing.hearers:
                await self.brain.note_unanswered(said)
            return []
        exchanges: list[VoiceExchange] = []
        for npc_id in addressing.responders:
            exchange = await self._answer(said, npc_id, replace(timings), transcript, answering)
            exchanges.append(exchange)
            if self._on_exchange is not None:
                await self._on_exchange(exchange)
        return exchanges

    async def _answer(
        self,
        said: PlayerSaid,
        npc_id: str,
        timings: VoiceTimings,
        transcript: Transcript | None,
        answering: asyncio.Event,
    ) -> VoiceExchange:
        npc = self.brain.registry.npc(self.server, npc_id)
        sink = TurnAudio(timings, self.realtime, answering)
        speaker = SentenceSpeaker(self.synthesizer, npc.voice, sink.play)
        speaking = self._speaking[said.player] = _Speaking(speaker, sink)
        sentences: list[str] = []
        turn_started = 0.0

        async def on_start(_turn: StartedTurn) -> None:
            nonlocal turn_started
            turn_started = time.time()

        async def on_sentence(_turn: StartedTurn, sentence: TurnSentence) -> None:
            if sink.stopped:
                return
            if timings.first_sentence is None:
                timings.first_sentence = time.time()
            sentences.append(sentence.text)
            speaker.say(sentence.text, sentence.emotion)

        try:
            ended = await self.brain.answer(said, npc_id, on_sentence, on_start)
            finishing = asyncio.create_task(speaker.finish(), name=f"speak-{npc_id}")
            await asyncio.wait({finishing})  # a barge-in cancels the speaker's work, and with it `finish`
            if not finishing.cancelled() and (error := finishing.exception()) is not None:
                raise error
        finally:
            await speaker.aclose()
            if self._speaking.get(said.player) is speaking:
                del self._speaking[said.player]
        if ended is not None and "first_token" in ended.timings_ms:
            timings.first_token = turn_started + ended.timings_ms["first_token"] / 1000.0
        return VoiceExchange(
            said=said,
            npc=npc,
            reply=" ".join(sentences[index] for index in sorted(speaker.delivered)),
            sentences_said=len(speaker.delivered),
            sentences_planned=len(sentences),
            interrupted=sink.stopped or (ended is not None and ended.interrupted),
            audio=sink.pcm,
            sample_rate=sink.sample_rate,
            timings=timings,
            transcript=transcript,
            tts_ms=sink.synthesis_ms,
            tts_audio_ms=sink.audio_ms,
        )
