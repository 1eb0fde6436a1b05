"""What a connection still has to send: control messages overtake audio, and audio has a small bounded queue.

A plugin that reads too slowly loses its oldest audio frames (counted), never stalls the pacer or other plugins.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable


class Outbox:
    def __init__(self, audio_capacity: int) -> None:
        self._control: deque[str] = deque()
        self._audio: deque[bytes] = deque(maxlen=audio_capacity)
        self._ready = asyncio.Event()
        self.audio_dropped = 0

    def put_control(self, text: str) -> None:
        self._control.append(text)
        self._ready.set()

    def put_audio(self, frame: bytes) -> None:
        if len(self._audio) == self._audio.maxlen:
            self.audio_dropped += 1
        self._audio.append(frame)
        self._ready.set()

    def _next(self) -> str | bytes | None:
        if self._control:
            return self._control.popleft()
        if self._audio:
            return self._audio.popleft()
        return None

    async def drain_forever(self, send: Callable[[str | bytes], Awaitable[None]]) -> None:
        """Send queued messages as they come, control first; runs until cancelled or `send` fails."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            while (message := self._next()) is not None:
                await send(message)
