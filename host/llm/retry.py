"""Retry a streamed reply only until its first piece arrives: a reply already partly spoken is never replayed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from pydantic import BaseModel, ConfigDict, Field

from host.llm.base import LLMError, close_stream

log = logging.getLogger(__name__)


class RetryPolicy(BaseModel):
    model_config = ConfigDict(frozen=True)

    retries: int = Field(2, ge=0, le=10, description="attempts after the first one")
    first_delay_s: float = Field(0.25, ge=0.0)
    max_delay_s: float = Field(4.0, ge=0.0)

    def delay(self, attempt: int) -> float:
        """Exponential backoff before retry number `attempt` (0-based)."""
        return float(min(self.max_delay_s, self.first_delay_s * 2**attempt))


async def stream_with_retry(open_stream: Callable[[], AsyncIterator[str]], policy: RetryPolicy) -> AsyncIterator[str]:
    """Yield the pieces of `open_stream()`, opening it again after a retryable `LLMError` that came before any piece.

    An error after the first piece propagates as it is: the caller has already passed that text on.
    """
    attempt = 0
    while True:
        stream = open_stream()
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            return
        except LLMError as exc:
            await close_stream(stream)
            if not exc.retryable or attempt >= policy.retries:
                raise
            delay = policy.delay(attempt)
            log.warning("%s; retrying in %.2f s (attempt %d of %d)", exc, delay, attempt + 1, policy.retries)
            await asyncio.sleep(delay)
            attempt += 1
            continue
        break
    try:
        yield first
        async for piece in stream:
            yield piece
    finally:
        await close_stream(stream)
