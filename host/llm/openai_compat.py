"""Any OpenAI-compatible endpoint (llama.cpp server, vLLM, LM Studio, hosted APIs): `POST {base}/chat/completions`
streamed as server-sent events, `data: {chunk}` lines until `data: [DONE]`.

The API key travels only in the Authorization header; it is scrubbed from every error detail, since some servers
echo it back in their error bodies.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from host.config import MASK
from host.llm.base import ChatMessage, GenerationOptions, LLMError
from host.llm.retry import RetryPolicy, stream_with_retry
from host.llm.transport import (
    LineTooLongError,
    LoopBoundClient,
    bounded_lines,
    describe_transport_error,
    http_timeout,
    read_error_body,
)

# How a `json_schema` in the options reaches the server: OpenAI's `json_schema` response format (OpenAI, vLLM,
# llama.cpp's own server, LM Studio), llama-cpp-python's `json_object` with a `schema`, or not at all.
StructuredOutput = Literal["json_schema", "json_object", "off"]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Delta(_Lenient):
    content: str | None = None


class _Choice(_Lenient):
    delta: _Delta = _Delta()
    finish_reason: str | None = None


class _ChunkError(_Lenient):
    message: str = "unknown error"


class _Chunk(_Lenient):
    """One `data:` event of a chat completion stream; some servers send `{"error": {...}}` in its place."""

    choices: list[_Choice] = []
    error: _ChunkError | str | None = None


class OpenAICompatLLM:
    """`LLM` on an OpenAI-compatible chat completions endpoint; `base_url` ends before `/chat/completions`."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: SecretStr | None = None,
        timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        structured_output: StructuredOutput = "json_schema",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._structured_output = structured_output
        self.model = model
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._retry = retry or RetryPolicy()
        self._clients = LoopBoundClient(self._make_client, _close_client)

    def stream(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> AsyncIterator[str]:
        return stream_with_retry(lambda: self._attempt(messages, options), self._retry)

    async def aclose(self) -> None:
        await self._clients.aclose()

    def _make_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=http_timeout(self._timeout_s))

    def request_body(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": options.model or self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            "temperature": options.temperature,
            "max_tokens": options.max_tokens,
        }
        if options.stop:
            body["stop"] = list(options.stop)
        if options.seed is not None:
            body["seed"] = options.seed
        if options.json_schema is not None and self._structured_output == "json_schema":
            # Not "strict": OpenAI's strict mode wants every field required, and optional fields have defaults here.
            schema = {"name": "reply", "schema": options.json_schema}
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif options.json_schema is not None and self._structured_output == "json_object":
            body["response_format"] = {"type": "json_object", "schema": options.json_schema}
        return body

    async def _attempt(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> AsyncIterator[str]:
        headers = {"Accept": "text/event-stream"}
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        url = f"{self.base_url}/chat/completions"
        try:
            async with self._clients.get().stream(
                "POST", url, json=self.request_body(messages, options), headers=headers
            ) as response:
                if response.status_code >= 400:
                    raise self._http_error(response.status_code, await read_error_body(response))
                async for piece in self._pieces(response):
                    yield piece
        except httpx.TransportError as exc:
            detail, retryable = describe_transport_error(exc, self._timeout_s)
            raise self._error(detail, retryable=retryable) from exc

    async def _pieces(self, response: httpx.Response) -> AsyncIterator[str]:
        finished = False
        try:
            async for line in bounded_lines(response):
                if not line.startswith("data:"):
                    continue  # blank separators, `: ping` comments, `event:` and `id:` fields
                data = line.removeprefix("data:").strip()
                if data == "[DONE]":
                    return
                try:
                    chunk = _Chunk.model_validate_json(data)
                except ValidationError as exc:
                    raise self._error(f"malformed stream event {data[:200]!r}: {exc.errors()[0]['msg']}") from exc
                if chunk.error is not None:
                    message = chunk.error if isinstance(chunk.error, str) else chunk.error.message
                    raise self._error(f"the server reported an error: {message}", retryable=True)
                for choice in chunk.choices:
                    if choice.delta.content:
                        yield choice.delta.content
                    finished = finished or choice.finish_reason is not None
        except LineTooLongError as exc:
            raise self._error(f"malformed stream: {exc}") from exc
        if not finished:
            raise self._error("the stream ended before the reply finished", retryable=True)

    def _http_error(self, status: int, body: str) -> LLMError:
        message = _error_message(body)
        if status == 404:
            return self._error(f"HTTP 404 (wrong URL or model {self.model!r} not found): {message}")
        if status in (401, 403):
            return self._error(f"HTTP {status}, the API key was refused: {message}")
        return self._error(f"HTTP {status}: {message}", retryable=status >= 500 or status in (408, 429))

    def _error(self, detail: str, *, retryable: bool = False) -> LLMError:
        key = self._api_key.get_secret_value() if self._api_key is not None else ""
        if len(key) >= 4:  # a shorter "key" would mask ordinary letters of the message, and protects nothing
            detail = detail.replace(key, MASK)
        return LLMError(self.name, self.base_url, detail, retryable=retryable)


def _error_message(body: str) -> str:
    """The `error.message` of an OpenAI-style error body, else the body itself."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return body or "(empty body)"
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    return body


async def _close_client(client: httpx.AsyncClient) -> None:
    await client.aclose()
