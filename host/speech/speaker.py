"""Speak one NPC turn sentence by sentence: each is synthesised as soon as it arrives, in order, and a barge-in
drops everything not yet handed over.

    speaker = SentenceSpeaker(synthesizer, profile.voice, on_audio=send)   # send(chunk) -> NpcAudio, pacing ...
    for sentence in turn:                   # as the LLM streams
        speaker.say(sentence.text, sentence.emotion)
    await speaker.finish()                  # or, when the player starts speaking: speaker.interrupt()

`on_audio` receives `SpokenChunk`s in sentence order; a sentence counts as delivered once `on_audio` returned for
its final chunk (an `on_audio` that waits for playback makes that "played"). `interrupt()` cancels the synthesis or
`on_audio` call in progress, drops the queued sentences and returns the indexes that were not delivered, so the
caller can record what was actually said.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from host.profiles.schema import VoiceSpec
from host.speech.tts import SynthesizedAudio, Synthesizer


@dataclass(frozen=True)
class SpokenChunk:
    index: int  # the sentence's position in the turn, from 0
    text: str
    emotion: str | None
    audio: SynthesizedAudio
    final: bool  # the sentence's last chunk


@dataclass(frozen=True)
class _Sentence:
    index: int
    text: str
    emotion: str | None


class SentenceSpeaker:
    """One NPC turn's speech. Not reusable after `finish()` or `interrupt()`."""

    def __init__(
        self, synthesizer: Synthesizer, voice: VoiceSpec, on_audio: Callable[[SpokenChunk], Awaitable[None]]
    ) -> None:
        self.synthesizer = synthesizer
        self.voice = voice
        self.on_audio = on_audio
        self.delivered: list[int] = []
        self._said = 0
        self._closed = False
        self._queue: asyncio.Queue[_Sentence | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    def say(self, text: str, emotion: str | None = None) -> int:
        """Queue a sentence; returns its index. Synthesis starts at once if nothing is ahead of it."""
        if self._closed:
            raise RuntimeError("this turn's speaker is finished or interrupted")
        index = self._said
        self._said += 1
        self._queue.put_nowait(_Sentence(index, text, emotion))
        if self._worker is None:
            self._worker = asyncio.create_task(self._speak_all(), name="sentence-speaker")
        return index

    async def finish(self) -> list[int]:
        """Wait until every queued sentence was delivered; returns the delivered indexes."""
        self._closed = True
        if self._worker is not None:
            self._queue.put_nowait(None)
            await self._worker
        return list(self.delivered)

    def interrupt(self) -> list[int]:
        """Barge-in: stop now, drop the queue; returns the indexes of sentences that were not delivered."""
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
        return [index for index in range(self._said) if index not in self.delivered]

    async def aclose(self) -> None:
        """Interrupt if still speaking and wait for the cancellation to settle."""
        self.interrupt()
        if self._worker is not None:
            await asyncio.gather(self._worker, return_exceptions=True)

    async def _speak_all(self) -> None:
        while (sentence := await self._queue.get()) is not None:
            await self._speak(sentence)

    async def _speak(self, sentence: _Sentence) -> None:
        # One chunk of look-ahead so the last chunk can be marked final without an empty marker chunk.
        pending: SynthesizedAudio | None = None
        async with contextlib.aclosing(self.synthesizer.stream(sentence.text, self.voice, sentence.emotion)) as stream:
            async for audio in stream:
                if pending is not None:
                    await self.on_audio(SpokenChunk(sentence.index, sentence.text, sentence.emotion, pending, False))
                pending = audio
        if pending is not None:
            await self.on_audio(SpokenChunk(sentence.index, sentence.text, sentence.emotion, pending, True))
        self.delivered.append(sentence.index)
