"""Backend choice: an NPC profile's `llm` table overrides the host's settings; instances are shared."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from host.config import Settings
from host.llm import factory
from host.llm.base import LLM, ChatMessage, GenerationOptions
from host.llm.embedded import EmbeddedLLM
from host.llm.ollama_backend import OllamaLLM
from host.llm.openai_compat import OpenAICompatLLM
from host.profiles.schema import LlmSpec
from tests.doubles.ollama_server import OllamaWireServer


@pytest.fixture(autouse=True)
async def fresh_factory() -> AsyncIterator[None]:
    await factory.close_all()
    yield
    await factory.close_all()


def test_the_host_default_is_the_embedded_model() -> None:
    llm = factory.make_llm(Settings())
    assert isinstance(llm, EmbeddedLLM)
    assert isinstance(llm, LLM)


def test_a_profile_backend_overrides_the_host_and_keeps_host_urls() -> None:
    settings = Settings(llm={"backend": "embedded", "ollama_url": "http://10.0.0.5:11434", "ollama_model": "qwen"})
    llm = factory.make_llm(settings, LlmSpec(backend="ollama"))
    assert isinstance(llm, OllamaLLM)
    assert (llm.url, llm.model) == ("http://10.0.0.5:11434", "qwen")


def test_a_profile_model_overrides_the_host_model() -> None:
    settings = Settings(llm={"backend": "openai", "openai_api_key": "sk-abcdefgh"})
    llm = factory.make_llm(settings, LlmSpec(model="big-advisor"))
    assert isinstance(llm, OpenAICompatLLM)
    assert llm.model == "big-advisor"
    assert llm.base_url == "http://127.0.0.1:8000/v1"


def test_instances_are_shared_per_backend_and_model() -> None:
    settings = Settings(llm={"backend": "ollama"})
    first = factory.make_llm(settings, LlmSpec())
    assert factory.make_llm(settings, None) is first
    assert factory.make_llm(settings, LlmSpec(temperature=0.2)) is first
    assert factory.make_llm(settings, LlmSpec(model="other:1b")) is not first
    assert factory.make_llm(Settings()) is factory.make_llm(Settings())


async def test_the_chosen_backend_answers_over_its_wire() -> None:
    async with OllamaWireServer(replies=["Aye, a room for two."]) as srv:
        settings = Settings(llm={"backend": "embedded", "ollama_url": srv.url})
        llm = factory.make_llm(settings, LlmSpec(backend="ollama", model="llama3.2:3b"))
        message = ChatMessage(role="user", content="A room?")
        reply = "".join([piece async for piece in llm.stream([message], GenerationOptions())])
        await factory.close_all()
    assert reply == "Aye, a room for two."
    assert srv.chat_bodies[0]["model"] == "llama3.2:3b"
