"""The Ollama backend over a real socket, against the wire double (no Ollama binary installs here)."""

from __future__ import annotations

import socket

import pytest

from host.llm.base import ChatMessage, GenerationOptions, LLMError
from host.llm.ollama_backend import OllamaLLM
from host.llm.retry import RetryPolicy
from tests.doubles.ollama_server import CloseMidStream, ErrorLine, HttpFault, OllamaWireServer

MESSAGES = [
    ChatMessage(role="system", content="You are Bram, the innkeeper."),
    ChatMessage(role="user", content='Steve says: "Any rooms free?"'),
]
FAST_RETRY = RetryPolicy(retries=2, first_delay_s=0.01, max_delay_s=0.02)


async def _collect(llm: OllamaLLM, options: GenerationOptions | None = None) -> list[str]:
    return [piece async for piece in llm.stream(MESSAGES, options or GenerationOptions())]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_streamed_pieces_join_to_the_reply_and_options_reach_ollama() -> None:
    reply = "Hello there. [happy] Fine day!"
    options = GenerationOptions(temperature=0.3, max_tokens=64, stop=("\nSteve:",), seed=11)
    async with OllamaWireServer(replies=[reply], models=["llama3.2:3b"]) as srv:
        llm = OllamaLLM(srv.url, "llama3.2:3b", keep_alive="45m", context_tokens=4096)
        pieces = await _collect(llm, options)
        await llm.aclose()

    assert len(pieces) > 1
    assert "".join(pieces) == reply
    [body] = srv.chat_bodies
    assert body["model"] == "llama3.2:3b"
    assert body["stream"] is True
    assert body["keep_alive"] == "45m"
    assert body["messages"] == [{"role": m.role, "content": m.content} for m in MESSAGES]
    assert body["options"] == {"temperature": 0.3, "num_predict": 64, "stop": ["\nSteve:"], "seed": 11, "num_ctx": 4096}


async def test_per_call_model_overrides_the_default() -> None:
    async with OllamaWireServer(replies=["Aye."]) as srv:
        llm = OllamaLLM(srv.url, "llama3.2:3b")
        await _collect(llm, GenerationOptions(model="qwen2.5:7b"))
        await llm.aclose()
    assert srv.chat_bodies[0]["model"] == "qwen2.5:7b"


async def test_a_500_before_the_first_piece_is_retried_and_the_reply_arrives() -> None:
    async with OllamaWireServer(replies=["Rooms aplenty."], faults=[HttpFault(500)]) as srv:
        llm = OllamaLLM(srv.url, "m", retry=FAST_RETRY)
        pieces = await _collect(llm)
        await llm.aclose()
    assert "".join(pieces) == "Rooms aplenty."
    assert len(srv.chat_bodies) == 2


async def test_an_error_line_before_the_first_piece_is_retried() -> None:
    async with OllamaWireServer(replies=["lost", "Second try."], faults=[ErrorLine(after_pieces=0)]) as srv:
        llm = OllamaLLM(srv.url, "m", retry=FAST_RETRY)
        assert "".join(await _collect(llm)) == "Second try."
        await llm.aclose()


async def test_retries_give_up_with_the_last_error() -> None:
    async with OllamaWireServer(replies=["never"], faults=[HttpFault(503, "busy")] * 3) as srv:
        llm = OllamaLLM(srv.url, "m", retry=FAST_RETRY)
        with pytest.raises(LLMError, match="HTTP 503: busy") as failure:
            await _collect(llm)
        await llm.aclose()
    assert len(srv.chat_bodies) == 3
    assert failure.value.backend == "ollama"
    assert failure.value.where == srv.url


async def test_a_break_mid_stream_raises_and_is_never_replayed() -> None:
    faults = [CloseMidStream(after_pieces=2)]
    async with OllamaWireServer(replies=["One two three four.", "replayed"], faults=faults) as srv:
        llm = OllamaLLM(srv.url, "m", retry=FAST_RETRY)
        received: list[str] = []
        with pytest.raises(LLMError, match="mid-reply") as failure:
            async for piece in llm.stream(MESSAGES, GenerationOptions()):
                received.append(piece)
        await llm.aclose()
    assert received == ["One", " two"]
    assert len(srv.chat_bodies) == 1
    assert srv.url in str(failure.value)


async def test_an_error_line_mid_stream_raises_without_replay() -> None:
    faults = [ErrorLine(after_pieces=1, error="CUDA out of memory")]
    async with OllamaWireServer(replies=["Well then.", "replayed"], faults=faults) as srv:
        llm = OllamaLLM(srv.url, "m", retry=FAST_RETRY)
        received: list[str] = []
        with pytest.raises(LLMError, match="CUDA out of memory"):
            async for piece in llm.stream(MESSAGES, GenerationOptions()):
                received.append(piece)
        await llm.aclose()
    assert received == ["Well"]
    assert len(srv.chat_bodies) == 1


async def test_unknown_model_is_named_and_not_retried() -> None:
    async with OllamaWireServer(replies=["x"], models=["llama3.2:3b"]) as srv:
        llm = OllamaLLM(srv.url, "mistral:7b", retry=FAST_RETRY)
        with pytest.raises(LLMError, match=r"model 'mistral:7b' not found \(run `ollama pull mistral:7b`\)"):
            await _collect(llm)
        await llm.aclose()
    assert len(srv.chat_bodies) == 1


async def test_connection_refused_names_the_url() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    llm = OllamaLLM(url, "m", retry=RetryPolicy(retries=1, first_delay_s=0.01))
    with pytest.raises(LLMError, match="cannot connect") as failure:
        await _collect(llm)
    await llm.aclose()
    assert str(failure.value).startswith(f"ollama LLM at {url}: ")


async def test_a_silent_server_hits_the_read_timeout() -> None:
    async with OllamaWireServer(replies=["Too slow."], chunk_delay_s=2.0) as srv:
        llm = OllamaLLM(srv.url, "m", timeout_s=0.2, retry=RetryPolicy(retries=0))
        with pytest.raises(LLMError, match=r"no data for 0.2 s"):
            await _collect(llm)
        await llm.aclose()
