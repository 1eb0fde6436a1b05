"""Real-time pacing of NPC voices: TTS audio arrives in bursts, the bridge releases one 20 ms frame per NPC per tick.

Audio is queued here (host side) and only the current frame leaves each tick, so `stop` silences an NPC within
one frame: the plugin never holds more than its own small jitter buffer. A stream "starts" with its first frame
and "finishes" after `end_after_idle_ticks` ticks without audio, so the short gaps between sentences of one reply
(TTS of the next sentence still running) do not end it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from host.speech.audio import Framer, Int16Array, StreamResampler, as_int16
from proximity_audio.protocol import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE

_TICK_S = FRAME_MS / 1000
# A loop that fell behind catches up (plugins hold a jitter buffer) unless it is more than this many ticks late:
# then the schedule restarts from now rather than bursting half a second of audio at once.
_MAX_LAG_TICKS = 25
# Sentence marks kept per stream. A stream that never idles out (an NPC answering turn after turn) would otherwise
# keep every mark; a reply has at most 12 sentences, so only marks of replies long over are forgotten.
MARKS_KEPT = 64
# A sentence whose final chunk never comes (its speech role died mid-sentence) ends the stream after this long, rather
# than keep the pacer ticking and the plugins' stream open until the NPC speaks again.
_ABANDONED_AFTER_S = 5.0

EndReason = Literal["finished", "stopped"]


@dataclass
class _NpcStream:
    framer: Framer = field(default_factory=lambda: Framer(FRAME_SAMPLES))
    frames: deque[Int16Array] = field(default_factory=deque)
    resampler: StreamResampler | None = None
    sequence: int = 0
    active: bool = False
    idle_ticks: int = 0
    # (mark, frames queued when its audio ended): a mark is heard once `sequence` has passed its end.
    marks: deque[tuple[Hashable, int]] = field(default_factory=lambda: deque(maxlen=MARKS_KEPT))
    # (opening, position of its first frame): reported in the tick that releases that frame.
    openings: deque[tuple[Hashable, int]] = field(default_factory=lambda: deque(maxlen=MARKS_KEPT))


@dataclass(frozen=True)
class PacedFrame:
    sequence: int
    samples: Int16Array


@dataclass(frozen=True)
class PacedTick:
    """What one 20 ms tick releases: streams that began, one frame per sounding NPC, streams that ended, and the
    `opens` names of audio whose first frame is in this tick (npc, opening)."""

    started: list[str]
    frames: dict[str, PacedFrame]
    ended: list[tuple[str, EndReason]]
    opened: list[tuple[str, Hashable]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.started or self.frames or self.ended)


class Pacer:
    def __init__(self, *, end_after_idle_ticks: int = 25) -> None:
        self._end_after = end_after_idle_ticks
        self._abandon_after = max(end_after_idle_ticks, round(_ABANDONED_AFTER_S / _TICK_S))
        self._streams: dict[str, _NpcStream] = {}
        # The marks a stream played to the end before it idled out: a reply heard in full is still heard in full
        # when the player answers (a barge-in asks) after its stream is gone.
        self._finished: dict[str, list[Hashable]] = {}
        self._stopped: list[str] = []
        self._wake = asyncio.Event()

    def enqueue(
        self,
        npc: str,
        pcm: bytes | Int16Array,
        rate: int,
        *,
        final: bool = True,
        mark: Hashable | None = None,
        opens: Hashable | None = None,
    ) -> None:
        """Queue mono PCM16 at any rate; `final` ends a sentence (its tail is flushed and padded to a whole frame).
        A `mark` on a final chunk names the sentence, so `heard` can tell once its last frame has left; `opens`
        names this audio in the tick that releases its first frame (`PacedTick.opened`)."""
        stream = self._streams.setdefault(npc, _NpcStream())
        if opens is not None:
            stream.openings.append((opens, stream.sequence + len(stream.frames)))
        if stream.resampler is None or stream.resampler.from_rate != rate:
            stream.resampler = StreamResampler(rate, SAMPLE_RATE)
        samples = stream.resampler.push(as_int16(pcm), last=final)
        stream.frames.extend(stream.framer.push(samples))
        if final:
            stream.resampler = None
            if stream.framer.pending_samples:
                stream.frames.extend(
                    stream.framer.push(np.zeros(FRAME_SAMPLES - stream.framer.pending_samples, np.int16))
                )
            if mark is not None:
                stream.marks.append((mark, stream.sequence + len(stream.frames)))
        self._wake.set()

    def heard(self, npc: str) -> list[Hashable]:
        """The marks of `npc`'s sentences whose every frame has left (call before `stop`); the last `MARKS_KEPT`."""
        stream = self._streams.get(npc)
        played = [mark for mark, end in stream.marks if end <= stream.sequence] if stream is not None else []
        return self._finished.get(npc, []) + played

    def stop(self, npc: str) -> bool:
        """Drop everything queued for `npc`; True if it was sounding or had audio queued."""
        self._finished.pop(npc, None)
        stream = self._streams.pop(npc, None)
        if stream is None:
            return False
        if stream.active:
            self._stopped.append(npc)
            self._wake.set()
        return stream.active or bool(stream.frames)

    def queued_frames(self, npc: str) -> int:
        stream = self._streams.get(npc)
        return len(stream.frames) if stream else 0

    @property
    def busy(self) -> bool:
        return bool(self._streams or self._stopped)

    def tick(self) -> PacedTick:
        """Release the next frame of every NPC that has one (call every 20 ms)."""
        started: list[str] = []
        opened: list[tuple[str, Hashable]] = []
        frames: dict[str, PacedFrame] = {}
        ended: list[tuple[str, EndReason]] = [(npc, "stopped") for npc in self._stopped]
        self._stopped.clear()
        for npc, stream in list(self._streams.items()):
            if stream.frames:
                if not stream.active:
                    stream.active = True
                    started.append(npc)
                frames[npc] = PacedFrame(stream.sequence, stream.frames.popleft())
                while stream.openings and stream.openings[0][1] <= stream.sequence:
                    opened.append((npc, stream.openings.popleft()[0]))
                stream.sequence += 1
                stream.idle_ticks = 0
                continue
            stream.idle_ticks += 1
            mid_sentence = stream.resampler is not None
            if stream.idle_ticks >= (self._abandon_after if mid_sentence else self._end_after):
                del self._streams[npc]
                self._finished[npc] = [mark for mark, _ in stream.marks][-MARKS_KEPT:]
                if stream.active:
                    ended.append((npc, "finished"))
        return PacedTick(started, frames, ended, opened)

    async def run(self, on_tick: Callable[[PacedTick], Awaitable[None]]) -> None:
        """Tick every 20 ms against a monotonic deadline while there is audio; sleep while there is none."""
        while True:
            if not self.busy:
                self._wake.clear()
                await self._wake.wait()
            deadline = time.monotonic()
            while self.busy:
                tick = self.tick()
                if not tick.empty:
                    await on_tick(tick)
                deadline += _TICK_S
                delay = deadline - time.monotonic()
                if delay < -_MAX_LAG_TICKS * _TICK_S:
                    deadline = time.monotonic()
                    delay = 0.0
                await asyncio.sleep(max(delay, 0.0))
