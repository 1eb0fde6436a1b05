"""The advisor's two models, built from a server's `[advisor]` profile table and the host's `[llm]` settings.

The light condensing model runs in its own embedded instance, not the brain's: condensing a long chunk must never
keep an NPC's turn waiting for the model's worker thread.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr

from host.config import Settings
from host.errors import ConfigError
from host.llm.base import LLM
from host.llm.ollama_backend import OllamaLLM
from host.llm.openai_compat import OpenAICompatLLM
from host.llm.retry import RetryPolicy
from host.profiles.schema import AdvisorModelSpec

CONDENSE_CONTEXT_TOKENS = 2048


def make_advisor_llm(settings: Settings, spec: AdvisorModelSpec) -> LLM:
    """A new backend for `spec`; the caller closes it. Connection errors are retried with backoff by the backend."""
    retry = RetryPolicy(retries=settings.llm.retries)
    if spec.backend == "ollama":
        return OllamaLLM(
            spec.url or settings.llm.ollama_url,
            spec.model or settings.llm.ollama_model,
            timeout_s=spec.timeout_s,
            retry=retry,
        )
    if spec.backend == "openai":
        return OpenAICompatLLM(
            spec.url or settings.llm.openai_url,
            spec.model or settings.llm.openai_model,
            api_key=_api_key(spec) or settings.llm.openai_api_key,
            timeout_s=spec.timeout_s,
            retry=retry,
            structured_output=spec.structured_output,
        )
    from host.llm.embedded import EmbeddedLLM  # llama.cpp: the `embedded` extra, imported only when used

    path = Path(spec.model) if spec.model else settings.llm.model_path
    # Its own copy of the model, in the background: the packaged weights as shipped (Q4_1) cost 44 MB less than the
    # Q8_0 copy NPCs answer with, and nobody waits for a condensed transcript (host/llm/packaged_weights.py).
    return EmbeddedLLM(path, context_tokens=CONDENSE_CONTEXT_TOKENS, threads=1, packaged_weights="as_shipped")


def model_id(spec: AdvisorModelSpec) -> str:
    """What identifies the model's output, for the digest cache: another model means another digest."""
    return f"{spec.backend}|{spec.url or ''}|{spec.model or 'default'}|{spec.temperature}|{spec.max_tokens}"


def _api_key(spec: AdvisorModelSpec) -> SecretStr | None:
    if spec.api_key_env is None:
        return None
    value = os.environ.get(spec.api_key_env)
    if not value:
        raise ConfigError(f"advisor model: environment variable {spec.api_key_env} (api_key_env) is not set")
    return SecretStr(value)
