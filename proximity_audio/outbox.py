"""What a connection still has to send, in two lanes.

Control replies (welcome, errors, pongs) overtake everything; at most `CONTROL_KEPT` wait, later ones are dropped.
The stream lane keeps NPC audio in order with the `npc_stream_start`/`npc_stream_end` messages around it; it holds at
most `tick_capacity` ticks of audio, and a plugin that reads too slowly loses its oldest audio (counted) instead of
stalling the pacer or other plugins.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class _Audio:
    data: bytes
    frames: int


# Control replies a connection may have waiting. Errors are rate limited, but pongs answer each ping: a plugin that
# pings faster than it reads must not grow the queue without end (welcome, the first, always fits).
CONTROL_KEPT = 64


class Outbox:
    def __init__(self, tick_capacity: int) -> None:
        self._control: deque[str] = deque()
        self._stream: deque[str | _Audio] = deque()
        self._audio_messages = 0
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

    def put_frames(self, data: bytes, frames: int) -> None:
        """Queue one binary message holding `frames` frames."""
        if self._audio_messages >= self._capacity:
            oldest = next(item for item in self._stream if isinstance(item, _Audio))
            self._stream.remove(oldest)
            self._audio_messages -= 1
            self.frames_dropped += oldest.frames
        self._stream.append(_Audio(data, frames))
        self._audio_messages += 1
        self._ready.set()

    def _next(self) -> str | bytes | None:
        if self._control:
            return self._control.popleft()
        if not self._stream:
            return None
        item = self._stream.popleft()
        if isinstance(item, str):
            return item
        self._audio_messages -= 1
        return item.data

    async def drain_forever(self, send: Callable[[str | bytes], Awaitable[None]]) -> None:
        """Send queued messages as they come, control first; runs until cancelled or `send` fails."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            while (message := self._next()) is not None:
                await send(message)
