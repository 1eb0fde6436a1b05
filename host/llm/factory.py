"""Pick the LLM backend for an NPC: its profile's `llm.backend` and `llm.model` override the host's settings.

Backends are shared: every NPC on the same (backend, URL or model file, model) gets the same instance, so the
embedded model loads once and HTTP connections are pooled.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from host.config import Settings
from host.llm.base import LLM
from host.llm.ollama_backend import OllamaLLM
from host.llm.openai_compat import OpenAICompatLLM
from host.llm.retry import RetryPolicy
from host.profiles.schema import LlmSpec

_shared: dict[tuple[str, str, str], LLM] = {}
_shared_lock = threading.Lock()


def make_llm(settings: Settings, llm_spec: LlmSpec | None = None) -> LLM:
    """The shared backend for these settings and (optionally) an NPC's `llm` table."""
    llm = settings.llm
    backend = (llm_spec.backend if llm_spec is not None else None) or llm.backend
    named: str | None = llm_spec.model if llm_spec is not None else None
    retry = RetryPolicy(retries=llm.retries)
    if backend == "ollama":
        model = named or llm.ollama_model
        return _shared_instance(
            ("ollama", llm.ollama_url, model),
            lambda: OllamaLLM(
                llm.ollama_url, model, timeout_s=llm.timeout_s, retry=retry, context_tokens=llm.context_tokens
            ),
        )
    if backend == "openai":
        model = named or llm.openai_model
        return _shared_instance(
            ("openai", llm.openai_url, model),
            lambda: OpenAICompatLLM(
                llm.openai_url, model, api_key=llm.openai_api_key, timeout_s=llm.timeout_s, retry=retry
            ),
        )
    from host.llm.embedded import EmbeddedLLM  # llama.cpp: the `embedded` extra, imported only when used

    path = Path(named) if named else llm.model_path
    chat_format = (llm_spec.chat_format if llm_spec is not None else None) or llm.chat_format
    return _shared_instance(
        (
            "embedded",
            str(path or f"packaged/{llm.packaged_weights}"),
            f"{llm.context_tokens}/{chat_format or 'template'}",
        ),
        lambda: EmbeddedLLM(
            path,
            context_tokens=llm.context_tokens,
            threads=llm.threads,
            chat_format=chat_format,
            packaged_weights=llm.packaged_weights,
        ),
    )


async def close_all() -> None:
    """Close every shared backend (at host shutdown)."""
    with _shared_lock:
        instances = list(_shared.values())
        _shared.clear()
    await asyncio.gather(*(instance.aclose() for instance in instances))


def _shared_instance(key: tuple[str, str, str], make: Callable[[], LLM]) -> LLM:
    with _shared_lock:
        if key not in _shared:
            _shared[key] = make()
        return _shared[key]
