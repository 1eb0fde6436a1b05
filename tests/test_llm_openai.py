"""The OpenAI-compatible backend against a real `llama_cpp.server` on 127.0.0.1 serving the packaged SmolLM2, and
against a wire double for the failures a real server does not show on demand."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from host.llm.base import ChatMessage, GenerationOptions, LLMError
from host.llm.openai_compat import OpenAICompatLLM
from host.llm.retry import RetryPolicy
from tests.doubles.ollama_server import CloseMidStream, ErrorLine, HttpFault
from tests.doubles.openai_server import EndlessLine, MalformedEvent, NoFinish, OpenAIFault, OpenAIWireServer
from tests.llama_server import API_KEY, LlamaServer, free_port

MESSAGES = [
    ChatMessage(role="system", content="You are Bram, the innkeeper of a Minecraft village."),
    ChatMessage(role="user", content='Steve says: "Good evening! Any rooms free?"'),
]
NO_RETRY = RetryPolicy(retries=0)


async def test_streams_a_reply_from_a_real_server(llama_server: LlamaServer) -> None:
    llm = OpenAICompatLLM(llama_server.base_url, "smollm2", api_key=SecretStr(API_KEY), retry=NO_RETRY)
    options = GenerationOptions(max_tokens=24, temperature=0.0, seed=5)
    pieces = [piece async for piece in llm.stream(MESSAGES, options)]
    await llm.aclose()
    assert len(pieces) > 1
    assert "".join(pieces).strip()


async def test_max_tokens_and_stop_are_honoured_by_the_server(llama_server: LlamaServer) -> None:
    llm = OpenAICompatLLM(llama_server.base_url, "smollm2", api_key=SecretStr(API_KEY), retry=NO_RETRY)
    count = [ChatMessage(role="user", content="Count from 1 to 300, separated by commas.")]
    capped = [piece async for piece in llm.stream(count, GenerationOptions(max_tokens=5, temperature=0.0))]
    stopped = "".join(
        [piece async for piece in llm.stream(count, GenerationOptions(max_tokens=60, temperature=0.0, stop=("7",)))]
    )
    await llm.aclose()
    assert 0 < len(capped) <= 5
    assert stopped
    assert "7" not in stopped


async def test_a_refused_key_is_an_error_that_never_shows_the_key(llama_server: LlamaServer) -> None:
    wrong_key = "sk-wrong-8a1b3c5d7e"
    llm = OpenAICompatLLM(llama_server.base_url, "smollm2", api_key=SecretStr(wrong_key), retry=NO_RETRY)
    with pytest.raises(LLMError, match="HTTP 401") as failure:
        await anext(llm.stream(MESSAGES, GenerationOptions(max_tokens=4)))
    await llm.aclose()
    assert not failure.value.retryable
    assert wrong_key not in str(failure.value)
    assert wrong_key not in repr(failure.value.args)
    assert llama_server.base_url in str(failure.value)


async def test_a_wrong_path_is_a_404_naming_the_url(llama_server: LlamaServer) -> None:
    base = llama_server.base_url.removesuffix("/v1") + "/not-v1"
    llm = OpenAICompatLLM(base, "smollm2", api_key=SecretStr(API_KEY), retry=NO_RETRY)
    with pytest.raises(LLMError, match="HTTP 404") as failure:
        await anext(llm.stream(MESSAGES, GenerationOptions(max_tokens=4)))
    await llm.aclose()
    assert str(failure.value).startswith(f"openai LLM at {base}: ")


async def test_connection_refused_names_the_url_and_hides_the_key() -> None:
    base = f"http://127.0.0.1:{free_port()}/v1"
    llm = OpenAICompatLLM(base, "m", api_key=SecretStr(API_KEY), retry=RetryPolicy(retries=1, first_delay_s=0.01))
    with pytest.raises(LLMError, match="cannot connect") as failure:
        await anext(llm.stream(MESSAGES, GenerationOptions()))
    await llm.aclose()
    assert base in str(failure.value)
    assert API_KEY not in str(failure.value)
    assert failure.value.retryable


async def test_a_password_in_the_url_never_reaches_the_error() -> None:
    port = free_port()
    llm = OpenAICompatLLM(f"http://bram:hunter2-url@127.0.0.1:{port}/v1", "m", retry=NO_RETRY)
    with pytest.raises(LLMError, match="cannot connect") as failure:
        await anext(llm.stream(MESSAGES, GenerationOptions()))
    await llm.aclose()
    assert str(failure.value).startswith(f"openai LLM at http://bram:********@127.0.0.1:{port}/v1: ")
    assert "hunter2" not in str(failure.value)


# Failure modes a real server does not show on demand, against the OpenAI wire double.

FAST_RETRY = RetryPolicy(retries=2, first_delay_s=0.01, max_delay_s=0.02)


async def test_options_and_key_reach_the_server_and_pieces_join_to_the_reply() -> None:
    options = GenerationOptions(temperature=0.2, max_tokens=50, stop=("\nSteve:",), seed=9, model="advisor-70b")
    async with OpenAIWireServer(replies=["Aye, two rooms. Stew's on."], api_key=API_KEY) as srv:
        llm = OpenAICompatLLM(srv.base_url, "default", api_key=SecretStr(API_KEY), retry=NO_RETRY)
        pieces = [piece async for piece in llm.stream(MESSAGES, options)]
        await llm.aclose()
    assert len(pieces) > 1
    assert "".join(pieces) == "Aye, two rooms. Stew's on."
    [body] = srv.chat_bodies
    assert body == {
        "model": "advisor-70b",
        "messages": [{"role": m.role, "content": m.content} for m in MESSAGES],
        "stream": True,
        "temperature": 0.2,
        "max_tokens": 50,
        "stop": ["\nSteve:"],
        "seed": 9,
    }
    assert srv.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


async def test_a_500_before_the_first_piece_is_retried() -> None:
    async with OpenAIWireServer(replies=["Second time lucky."], faults=[HttpFault(502, "bad gateway")]) as srv:
        llm = OpenAICompatLLM(srv.base_url, "m", retry=FAST_RETRY)
        pieces = [piece async for piece in llm.stream(MESSAGES, GenerationOptions())]
        await llm.aclose()
    assert "".join(pieces) == "Second time lucky."
    assert len(srv.chat_bodies) == 2


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (CloseMidStream(after_pieces=2), "mid-reply"),
        (ErrorLine(after_pieces=2, error="the model crashed"), "the model crashed"),
        (MalformedEvent(after_pieces=2), "malformed stream event"),
        (EndlessLine(after_pieces=2), "ran past 1048576 characters without a line break"),
    ],
)
async def test_a_failure_mid_stream_raises_and_is_never_replayed(fault: OpenAIFault, message: str) -> None:
    async with OpenAIWireServer(replies=["One two three four.", "replayed"], faults=[fault]) as srv:
        llm = OpenAICompatLLM(srv.base_url, "m", retry=FAST_RETRY)
        received: list[str] = []
        with pytest.raises(LLMError, match=message) as failure:
            async for piece in llm.stream(MESSAGES, GenerationOptions()):
                received.append(piece)
        await llm.aclose()
    assert received == ["One", " two"]
    assert len(srv.chat_bodies) == 1
    assert srv.base_url in str(failure.value)


async def test_a_stream_that_stops_without_finishing_is_an_error() -> None:
    async with OpenAIWireServer(replies=["Cut short", "unused"], faults=[NoFinish()]) as srv:
        llm = OpenAICompatLLM(srv.base_url, "m", retry=FAST_RETRY)
        with pytest.raises(LLMError, match="ended before the reply finished"):
            _ = [piece async for piece in llm.stream(MESSAGES, GenerationOptions())]
        await llm.aclose()
    assert len(srv.chat_bodies) == 1


async def test_a_key_echoed_by_the_server_is_masked_in_the_error() -> None:
    wrong_key = "sk-live-0123456789abcdef"
    async with OpenAIWireServer(replies=["x"], api_key=API_KEY) as srv:
        llm = OpenAICompatLLM(srv.base_url, "m", api_key=SecretStr(wrong_key), retry=FAST_RETRY)
        with pytest.raises(
            LLMError, match=r"HTTP 401, the API key was refused: Incorrect API key provided: \*{8}"
        ) as e:
            await anext(llm.stream(MESSAGES, GenerationOptions()))
        await llm.aclose()
    assert wrong_key not in str(e.value)
    assert len(srv.chat_bodies) == 1
