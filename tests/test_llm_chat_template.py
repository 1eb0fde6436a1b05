"""A GGUF without a chat template: refused with a clear error, or formatted as configured - never llama-cpp-python's
silent Llama 2 fallback, which drops the system message (the whole persona)."""

from __future__ import annotations

from pathlib import Path

import pytest

from host.config import Settings
from host.llm.base import ChatMessage, GenerationOptions, LLMError
from host.llm.embedded import CHAT_TEMPLATE_KEY, EmbeddedLLM
from host.llm.factory import make_llm
from host.packaged_models import smollm2_path
from host.profiles.schema import LlmSpec


@pytest.fixture(scope="module")
def templateless_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged SmolLM2 with its chat-template key renamed (same length, so the file stays a valid GGUF)."""
    data = smollm2_path().read_bytes()
    key = CHAT_TEMPLATE_KEY.encode()
    assert data.count(key) == 1
    path = tmp_path_factory.mktemp("gguf") / "no-template.gguf"
    path.write_bytes(data.replace(key, key[:-1] + b"X"))
    return path


async def test_a_gguf_without_a_chat_template_is_refused_with_the_fix(templateless_gguf: Path) -> None:
    llm = EmbeddedLLM(templateless_gguf, context_tokens=512)
    with pytest.raises(LLMError) as caught:
        await llm.warm()
    message = caught.value.message
    assert str(templateless_gguf) in message
    assert "no chat template" in message and "NPC_HOST_LLM__CHAT_FORMAT" in message and "chatml" in message


async def test_a_configured_chat_format_formats_the_prompt(templateless_gguf: Path) -> None:
    llm = EmbeddedLLM(templateless_gguf, context_tokens=512, threads=1, chat_format="chatml")
    loaded = await llm.warm()
    assert loaded.llama.chat_format == "chatml"
    messages = [
        ChatMessage(role="system", content="You are Bram, the innkeeper."),
        ChatMessage(role="user", content="Alice: Hello!"),
    ]
    reply = "".join([piece async for piece in llm.stream(messages, GenerationOptions(max_tokens=12, seed=1))])
    assert reply.strip()
    assert llm.last_stats is not None and llm.last_stats.prompt_tokens > 15  # the system message was in the prompt


async def test_an_unknown_chat_format_lists_the_known_ones(templateless_gguf: Path) -> None:
    with pytest.raises(LLMError, match=r"unknown chat format 'chatlm': .*valid formats.*'chatml'"):
        await EmbeddedLLM(templateless_gguf, context_tokens=512, chat_format="chatlm").warm()


def test_the_npc_profile_can_name_the_chat_format(templateless_gguf: Path) -> None:
    settings = Settings(llm={"model_path": templateless_gguf, "chat_format": "gemma"})
    host_default = make_llm(settings)
    own = make_llm(settings, LlmSpec(chat_format="chatml"))
    assert isinstance(host_default, EmbeddedLLM) and isinstance(own, EmbeddedLLM)
    assert (host_default.chat_format, own.chat_format) == ("gemma", "chatml")
