"""The seam every LLM backend implements: stream text pieces for a chat."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from host.config import MASK, mask_url, url_password
from host.errors import NpcHostError


class ChatMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class GenerationOptions(BaseModel):
    model_config = ConfigDict(frozen=True)

    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(120, ge=1)
    stop: tuple[str, ...] = ()
    seed: int | None = None
    model: str | None = Field(None, description="backend-specific model name; None = the backend's default")
    cache_key: str | None = Field(None, description="stable id (e.g. server/npc) whose prompt prefix is worth reusing")
    json_schema: dict[str, Any] | None = Field(
        None, description="constrain the reply to JSON of this schema, where the backend can (docs/llm.md)"
    )


class LLMError(NpcHostError):
    """A backend failed. The message names the backend and URL, never a key or the URL's password."""

    code = "llm"

    def __init__(self, backend: str, where: str, detail: str, *, retryable: bool = False) -> None:
        password = url_password(where)
        if password:  # transport errors may quote the URL they failed on
            detail = detail.replace(password, MASK)
        self.where = mask_url(where)
        super().__init__(f"{backend} LLM at {self.where}: {detail}")
        self.backend = backend
        self.retryable = retryable


@runtime_checkable
class LLM(Protocol):
    name: str

    def stream(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> AsyncIterator[str]:
        """Yield text pieces as the model produces them. Cancelling the iteration stops generation."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class PrefixReader(Protocol):
    """A backend that keeps prompt prefixes in this process (per `GenerationOptions.cache_key`) and can read one ahead
    of the prompt that will start with it. Remote servers are not sent such extra requests."""

    async def prefill(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> int:
        """Read `messages`, the start of a prompt still to come, into the prefix kept for `options.cache_key`;
        returns the prompt tokens evaluated."""
        ...


@dataclass(frozen=True, slots=True)
class Completion:
    """A whole reply, and how many pieces (about one token each) the backend streamed for it."""

    text: str
    pieces: int


async def complete(llm: LLM, messages: Sequence[ChatMessage], options: GenerationOptions) -> Completion:
    """Collect a streamed reply, for callers that need all of it (summaries, the advisor)."""
    parts: list[str] = []
    stream = llm.stream(messages, options)
    try:
        async for piece in stream:
            parts.append(piece)
    finally:
        await close_stream(stream)
    return Completion("".join(parts), len(parts))


async def close_stream(stream: AsyncIterator[str]) -> None:
    """Stop a `stream()` iteration now: closing the backend's generator is what cancels generation. A backend error
    raised while closing is of no use to a caller that is done with the reply."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(LLMError):
            await aclose()
