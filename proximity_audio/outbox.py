"""What a connection still has to send, in two lanes.

Control replies (welcome, errors, pongs) overtake everything; at most `CONTROL_KEPT` wait, later ones are dropped.
The stream lane keeps NPC audio in order with the `npc_stream_start`/`npc_stream_end` messages around it; it holds at
most `tick_capacity` ticks of audio, and a plugin that reads too slowly loses its oldest audio (counted) instead of
stalling the pacer or other plugins.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class _Audio:
    data: bytes
    frames: int
    ends_tick: bool  # a tick's frames may need several messages (the size limit); capacity counts ticks


# Control replies a connection may have waiting. Errors are rate limited, but pongs answer each ping: a plugin that
# pings faster than it reads must not grow the queue without end (welcome, the first, always fits).
CONTROL_KEPT = 64


class Outbox:
    def __init__(self, tick_capacity: int) -> None:
        self._control: deque[str] = deque()
        self._stream: deque[str | _Audio] = deque()
        self._audio_ticks = 0
        self._capacity = tick_capacity
        self._ready = asyncio.Event()
        self.frames_dropped = 0

    def put_control(self, text: str) -> None:
        """Queue a control reply; dropped when `CONTROL_KEPT` are already waiting."""
        if len(self._control) >= CONTROL_KEPT:
            return
        self._control.append(text)
        self._ready.set()

    def put_stream_message(self, text: str) -> None:
        self._stream.append(text)
        self._ready.set()

    def put_tick(self, messages: Sequence[tuple[bytes, int]]) -> None:
        """Queue one tick's audio: binary messages, each with the number of frames it holds."""
        if not messages:
            return
        if self._audio_ticks >= self._capacity:
            self._drop_oldest_tick()
        *body, (last, last_frames) = messages
        self._stream.extend(_Audio(data, frames, ends_tick=False) for data, frames in body)
        self._stream.append(_Audio(last, last_frames, ends_tick=True))
        self._audio_ticks += 1
        self._ready.set()

    def _drop_oldest_tick(self) -> None:
        """Drop the audio of the oldest tick still queued; stream messages around it stay."""
        kept: deque[str | _Audio] = deque()
        dropping = True
        for item in self._stream:
            if dropping and isinstance(item, _Audio):
                self.frames_dropped += item.frames
                dropping = not item.ends_tick
            else:
                kept.append(item)
        self._stream = kept
        self._audio_ticks -= 1

    def _next(self) -> str | bytes | None:
        if self._control:
            return self._control.popleft()
        if not self._stream:
            return None
        item = self._stream.popleft()
        if isinstance(item, str):
            return item
        if item.ends_tick:
            self._audio_ticks -= 1
        return item.data

    async def drain_forever(self, send: Callable[[str | bytes], Awaitable[None]]) -> None:
        """Send queued messages as they come, control first; runs until cancelled or `send` fails."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            while (message := self._next()) is not None:
                await send(message)
