"""Retrying a streamed reply: only before its first piece, and every attempt is closed however it ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from host.llm.base import LLMError
from host.llm.retry import RetryPolicy, stream_with_retry

FAST = RetryPolicy(retries=2, first_delay_s=0.0)


class Attempts:
    """Streams whose first attempts fail as told; records which attempts were closed."""

    def __init__(self, failures: list[LLMError], pieces: list[str], first_piece: asyncio.Event | None = None) -> None:
        self.failures = failures
        self.pieces = pieces
        self.first_piece = first_piece
        self.waiting = asyncio.Event()
        self.opened = 0
        self.closed = 0

    def open(self) -> AsyncIterator[str]:
        self.opened += 1
        return self._attempt()

    async def _attempt(self) -> AsyncIterator[str]:
        try:
            if self.failures:
                raise self.failures.pop(0)
            if self.first_piece is not None:
                self.waiting.set()
                await self.first_piece.wait()
            for piece in self.pieces:
                yield piece
        finally:
            self.closed += 1


async def test_retryable_errors_before_the_first_piece_are_retried() -> None:
    attempts = Attempts([LLMError("t", "here", "busy", retryable=True)] * 2, ["Aye", "."])
    assert [piece async for piece in stream_with_retry(attempts.open, FAST)] == ["Aye", "."]
    assert (attempts.opened, attempts.closed) == (3, 3)


async def test_a_final_error_is_not_retried() -> None:
    attempts = Attempts([LLMError("t", "here", "model not found")], ["never"])
    with pytest.raises(LLMError, match="model not found"):
        _ = [piece async for piece in stream_with_retry(attempts.open, FAST)]
    assert (attempts.opened, attempts.closed) == (1, 1)


async def test_cancelling_before_the_first_piece_closes_the_attempt() -> None:
    attempts = Attempts([], ["late"], first_piece=asyncio.Event())
    reader = asyncio.create_task(anext(stream_with_retry(attempts.open, FAST)))
    await attempts.waiting.wait()
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert attempts.closed == 1
