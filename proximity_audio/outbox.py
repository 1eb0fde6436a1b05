"""What a connection still has to send, in two lanes.

Control replies (welcome, errors, pongs) overtake everything. The stream lane keeps NPC audio frames in order with
their `npc_stream_start`/`npc_stream_end` messages; it holds at most `frame_capacity` frames, and a plugin that reads
too slowly loses its oldest frames (counted) instead of stalling the pacer or other plugins.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable


class Outbox:
    def __init__(self, frame_capacity: int) -> None:
        self._control: deque[str] = deque()
        self._stream: deque[str | bytes] = deque()
        self._frames = 0
        self._capacity = frame_capacity
        self._ready = asyncio.Event()
        self.frames_dropped = 0

    def put_control(self, text: str) -> None:
        self._control.append(text)
        self._ready.set()

    def put_stream_message(self, text: str) -> None:
        self._stream.append(text)
        self._ready.set()

    def put_frame(self, frame: bytes) -> None:
        if self._frames >= self._capacity:
            oldest = next(item for item in self._stream if isinstance(item, bytes))
            self._stream.remove(oldest)
            self._frames -= 1
            self.frames_dropped += 1
        self._stream.append(frame)
        self._frames += 1
        self._ready.set()

    def _next(self) -> str | bytes | None:
        if self._control:
            return self._control.popleft()
        if self._stream:
            item = self._stream.popleft()
            if isinstance(item, bytes):
                self._frames -= 1
            return item
        return None

    async def drain_forever(self, send: Callable[[str | bytes], Awaitable[None]]) -> None:
        """Send queued messages as they come, control first; runs until cancelled or `send` fails."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            while (message := self._next()) is not None:
                await send(message)
