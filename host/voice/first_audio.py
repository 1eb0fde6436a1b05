"""The first audio goes first: within one process, the brain stops reading a turn's reply from the LLM after its
first sentence until the speech role has that sentence's first audio out.

llama.cpp and Piper share the same cores; an LLM writing sentences 2-3 while Piper makes sentence 1 doubles the time
to the first audio the player hears. The embedded LLM computes a token only when its reader asks for one
(host/llm/embedded.py), so a brain that stops reading stops generation.

    async with signal.first_sentence(turn_id) as first_audio:   # the brain, around publishing sentence 0
        await publish(NpcSentence(...))
    # left once the speech role called `signal.out(turn_id)` (`first_audio.at` says when), or after `WAIT_S` (3 s)

    signal.out(turn_id)                            # the speech role: a chunk of the turn was published, or it gave up

When no speech role runs in this process (`speech_here` is false: the brain and speech run apart), nothing waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

# The longest a turn's reply waits for its first audio: a voice that is slow or failed never stalls a reply longer.
WAIT_S = 3.0


@dataclass
class FirstAudio:
    """One turn's wait; `at` is the wall time its first audio was out (None: not in this process, or not in time)."""

    at: float | None = None
    event: asyncio.Event = field(default_factory=asyncio.Event)


class FirstAudioSignal:
    def __init__(self, wait_s: float = WAIT_S) -> None:
        self.wait_s = wait_s
        self.speech_here = False  # a speech role runs in this process (set by it while it runs)
        self._waiting: dict[str, FirstAudio] = {}  # only turns between their first sentence and its audio

    def out(self, turn_id: str) -> None:
        """The turn's first audio was published (or the speech role will make none)."""
        waiting = self._waiting.get(turn_id)
        if waiting is not None and not waiting.event.is_set():
            waiting.at = time.time()
            waiting.event.set()

    @contextlib.asynccontextmanager
    async def first_sentence(self, turn_id: str) -> AsyncIterator[FirstAudio]:
        """Around handing the turn's first sentence over: waits on exit until its first audio is out."""
        waiting = FirstAudio()
        if not self.speech_here:
            yield waiting
            return
        self._waiting[turn_id] = waiting
        try:
            yield waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiting.event.wait(), self.wait_s)
        finally:
            del self._waiting[turn_id]
