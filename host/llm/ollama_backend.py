"""Ollama through its official async client: `POST /api/chat` streamed as NDJSON."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import ollama
import pydantic

from host.llm.base import ChatMessage, GenerationOptions, LLMError
from host.llm.retry import RetryPolicy, stream_with_retry
from host.llm.transport import LoopBoundClient, describe_transport_error, http_timeout

DEFAULT_KEEP_ALIVE = "30m"


class OllamaLLM:
    """`LLM` on an Ollama server. `keep_alive` keeps the model loaded between turns (Ollama unloads after 5 min)."""

    name = "ollama"

    def __init__(
        self,
        url: str,
        model: str,
        *,
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        keep_alive: str | float = DEFAULT_KEEP_ALIVE,
        context_tokens: int | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self._timeout_s = timeout_s
        self._retry = retry or RetryPolicy()
        self._keep_alive = keep_alive
        self._context_tokens = context_tokens
        self._clients = LoopBoundClient(self._make_client, _close_client)

    def stream(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> AsyncIterator[str]:
        return stream_with_retry(lambda: self._attempt(messages, options), self._retry)

    async def aclose(self) -> None:
        await self._clients.aclose()

    def _make_client(self) -> ollama.AsyncClient:
        return ollama.AsyncClient(host=self.url, timeout=http_timeout(self._timeout_s))

    def request_options(self, options: GenerationOptions) -> dict[str, Any]:
        """Ollama's `options` for one reply (Modelfile parameter names)."""
        wire: dict[str, Any] = {"temperature": options.temperature, "num_predict": options.max_tokens}
        if options.stop:
            wire["stop"] = list(options.stop)
        if options.seed is not None:
            wire["seed"] = options.seed
        if self._context_tokens is not None:
            wire["num_ctx"] = self._context_tokens
        return wire

    async def _attempt(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> AsyncIterator[str]:
        model = options.model or self.model
        try:
            parts = await self._clients.get().chat(
                model=model,
                messages=[{"role": m.role, "content": m.content} for m in messages],
                stream=True,
                options=self.request_options(options),
                keep_alive=self._keep_alive,
                format=options.json_schema,  # Ollama constrains the reply to this schema (None: free text)
            )
            async for part in parts:
                if part.message.content:
                    yield part.message.content
        except ollama.ResponseError as exc:
            raise self._response_error(exc, model) from exc
        except httpx.TransportError as exc:
            detail, retryable = describe_transport_error(exc, self._timeout_s)
            raise LLMError(self.name, self.url, detail, retryable=retryable) from exc
        except ConnectionError as exc:  # the client's own wording for a refused connection
            raise LLMError(self.name, self.url, f"cannot connect: {exc}", retryable=True) from exc
        except (json.JSONDecodeError, pydantic.ValidationError) as exc:
            raise LLMError(self.name, self.url, f"malformed stream from the server: {exc}") from exc

    def _response_error(self, exc: ollama.ResponseError, model: str) -> LLMError:
        status = exc.status_code
        if status == 404:
            return LLMError(self.name, self.url, f"model {model!r} not found (run `ollama pull {model}`): {exc.error}")
        if status == -1:  # an `{"error": ...}` line inside a 200 stream: generation failed part way
            return LLMError(self.name, self.url, f"model {model!r} failed: {exc.error}", retryable=True)
        retryable = status >= 500 or status == 429
        return LLMError(self.name, self.url, f"HTTP {status}: {exc.error}", retryable=retryable)


async def _close_client(client: ollama.AsyncClient) -> None:
    await client.close()  # type: ignore[no-untyped-call]  # ollama leaves close() unannotated
