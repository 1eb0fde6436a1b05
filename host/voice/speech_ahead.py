"""Speech made ahead: within one process, the first sentence of a speculative answer is synthesised while it is held
back (host/brain/speculation.py), so its audio is ready the moment the player's line is final and the turn is
committed, instead of Piper starting only then.

    ahead.prepare(voice, text, emotion)          # the brain, when a speculative turn holds a sentence
    speaker = SentenceSpeaker(ahead, voice, ...)  # the speech role speaks through it: a sentence made ahead is
                                                  # taken from here (once), any other is synthesised as usual

The speech role sets `synthesizer` while it runs; without a speech role in this process (the brain and speech run
apart) `prepare` does nothing. What is made ahead for a turn that is then discarded is stopped (`drop`, at Piper's
next chunk); anything never asked for is forgotten after `HELD` newer ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the hub's services hold one of these; Piper is imported only where speech runs
    from host.profiles.schema import VoiceSpec
    from host.speech.tts import SynthesizedAudio, Synthesizer

log = logging.getLogger(__name__)

HELD = 8  # sentences made ahead and not yet spoken, at most (one per speculative turn is the usual)

Made = asyncio.Task[list["SynthesizedAudio"]]


def _key(voice: VoiceSpec, text: str, emotion: str | None) -> str:
    return f"{voice.model_dump_json()}\0{emotion or ''}\0{text}"


class SpeechAhead:
    """A `Synthesizer` that hands out audio made ahead by `prepare`, and synthesises everything else."""

    def __init__(self) -> None:
        self.synthesizer: Synthesizer | None = None  # the speech role's, while it runs in this process
        self._made: OrderedDict[str, Made] = OrderedDict()

    def prepare(self, voice: VoiceSpec, text: str, emotion: str | None = None) -> None:
        """Start synthesising `text` now, for the speaker that will be asked for it soon."""
        if self.synthesizer is None:
            return
        key = _key(voice, text, emotion)
        if key in self._made:
            return
        made = asyncio.create_task(_all_of(self.synthesizer, text, voice, emotion), name="speech-ahead")
        made.add_done_callback(_retrieve)
        self._made[key] = made
        while len(self._made) > HELD:
            self._made.popitem(last=False)[1].cancel()

    def drop(self, voice: VoiceSpec, text: str, emotion: str | None = None) -> None:
        """What `prepare` started for this sentence will not be asked for (its turn was discarded): stop making it."""
        made = self._made.pop(_key(voice, text, emotion), None)
        if made is not None:
            made.cancel()

    def clear(self) -> None:
        for made in self._made.values():
            made.cancel()
        self._made.clear()

    @property
    def prepared(self) -> int:
        return len(self._made)

    async def synthesize(self, text: str, voice: VoiceSpec, emotion: str | None = None) -> SynthesizedAudio:
        return await self._synthesizer().synthesize(text, voice, emotion)

    async def stream(
        self, text: str, voice: VoiceSpec, emotion: str | None = None
    ) -> AsyncGenerator[SynthesizedAudio, None]:
        made = self._made.pop(_key(voice, text, emotion), None)
        if made is not None:
            try:
                chunks = await made
            except Exception as exc:  # a voice that failed ahead fails again below, where its error is reported
                log.debug("speech made ahead failed (%s); synthesising it again", exc)
            else:
                for chunk in chunks:
                    yield chunk
                return
        async with contextlib.aclosing(self._synthesizer().stream(text, voice, emotion)) as fresh:
            async for chunk in fresh:
                yield chunk

    def _synthesizer(self) -> Synthesizer:
        if self.synthesizer is None:
            raise RuntimeError("no speech role runs in this process")
        return self.synthesizer


async def _all_of(synthesizer: Synthesizer, text: str, voice: VoiceSpec, emotion: str | None) -> list[SynthesizedAudio]:
    async with contextlib.aclosing(synthesizer.stream(text, voice, emotion)) as stream:
        return [chunk async for chunk in stream]


def _retrieve(made: Made) -> None:
    if not made.cancelled():
        made.exception()  # a sentence made ahead and never asked for is not reported as never retrieved
