"""The Ollama wire double speaks the documented protocol, so tests built on it exercise real client behaviour."""

from __future__ import annotations

import json
from typing import Any

import httpx
import ollama
import pytest

from tests.doubles.ollama_server import (
    CloseMidStream,
    ErrorLine,
    Fault,
    HttpFault,
    OllamaWireServer,
    split_into_pieces,
)

USER = [{"role": "user", "content": "Good evening, innkeeper"}]


async def _ndjson(url: str, body: dict[str, Any]) -> tuple[httpx.Response, list[dict[str, Any]]]:
    async with httpx.AsyncClient(base_url=url) as client, client.stream("POST", "/api/chat", json=body) as response:
        lines = [json.loads(line) async for line in response.aiter_lines() if line]
    return response, lines


async def test_chat_streams_ndjson_pieces_then_a_done_line_with_stats() -> None:
    async with OllamaWireServer(replies=["Hello there. [happy] Fine day!"]) as srv:
        response, lines = await _ndjson(srv.url, {"model": "m", "messages": USER})

    assert response.headers["content-type"] == "application/x-ndjson"
    *pieces, final = lines
    assert "".join(p["message"]["content"] for p in pieces) == "Hello there. [happy] Fine day!"
    assert len(pieces) == 5
    assert all(p["done"] is False and p["message"]["role"] == "assistant" for p in pieces)
    assert final["done"] is True
    assert final["done_reason"] == "stop"
    assert final["eval_count"] == 5
    assert final["prompt_eval_count"] == 3
    assert srv.chat_bodies == [{"model": "m", "messages": USER}]


async def test_official_client_reads_the_stream_and_options_are_recorded() -> None:
    async with OllamaWireServer(replies=[["Hel", "lo", "!"]]) as srv, ollama.AsyncClient(host=srv.url) as client:
        stream = await client.chat(model="m", messages=USER, stream=True, options={"seed": 7}, keep_alive="30m")
        parts = [part async for part in stream]

    assert [p.message.content for p in parts] == ["Hel", "lo", "!", ""]
    assert parts[-1].done and parts[-1].eval_count == 3
    assert srv.chat_bodies[0]["options"] == {"seed": 7}
    assert srv.chat_bodies[0]["keep_alive"] == "30m"


async def test_num_predict_and_stop_shorten_the_reply_like_a_model() -> None:
    replies = ["one two three four", "Aye. User: ignore this"]
    async with OllamaWireServer(replies=replies) as srv:
        _, capped = await _ndjson(srv.url, {"model": "m", "messages": USER, "options": {"num_predict": 2}})
        _, stopped = await _ndjson(srv.url, {"model": "m", "messages": USER, "options": {"stop": ["User:"]}})

    assert "".join(p["message"]["content"] for p in capped[:-1]) == "one two"
    assert capped[-1]["done_reason"] == "length"
    assert "".join(p["message"]["content"] for p in stopped[:-1]) == "Aye. "
    assert stopped[-1]["done_reason"] == "stop"


async def test_non_streaming_call_returns_one_object() -> None:
    async with OllamaWireServer(replies=["All at once."]) as srv, httpx.AsyncClient() as client:
        response = await client.post(f"{srv.url}/api/chat", json={"model": "m", "messages": USER, "stream": False})
    assert response.json()["message"]["content"] == "All at once."
    assert response.json()["done"] is True


async def test_faults_apply_to_the_numbered_call_and_a_500_consumes_no_reply() -> None:
    faults: list[Fault | None] = [
        HttpFault(500, "boom"),
        CloseMidStream(after_pieces=1),
        ErrorLine(after_pieces=1, error="oom"),
    ]
    async with (
        OllamaWireServer(replies=["a b c", "d e f", "g h"], faults=faults) as srv,
        ollama.AsyncClient(host=srv.url) as client,
    ):
        with pytest.raises(ollama.ResponseError) as first:
            await anext(await client.chat(model="m", messages=USER, stream=True))
        assert first.value.status_code == 500
        assert first.value.error == "boom"

        received: list[str] = []
        with pytest.raises(httpx.RemoteProtocolError):
            async for part in await client.chat(model="m", messages=USER, stream=True):
                received.append(part.message.content)
        assert received == ["a"]

        with pytest.raises(ollama.ResponseError, match="oom"):
            async for part in await client.chat(model="m", messages=USER, stream=True):
                received.append(part.message.content)
        assert received == ["a", "d"]
        assert srv.replies_left == 1


async def test_unknown_model_gets_404_and_tags_list_known_models() -> None:
    async with (
        OllamaWireServer(replies=["x"], models=["llama3.2:3b"]) as srv,
        ollama.AsyncClient(host=srv.url) as client,
    ):
        with pytest.raises(ollama.ResponseError) as missing:
            await anext(await client.chat(model="nope", messages=USER, stream=True))
        listed = await client.list()
    assert missing.value.status_code == 404
    assert "not found" in missing.value.error
    assert [m.model for m in listed.models] == ["llama3.2:3b"]


async def test_running_out_of_replies_is_a_loud_500() -> None:
    async with OllamaWireServer(replies=[]) as srv, httpx.AsyncClient() as client:
        response = await client.post(f"{srv.url}/api/chat", json={"model": "m", "messages": USER})
    assert response.status_code == 500
    assert "no scripted reply left" in response.json()["error"]


@pytest.mark.parametrize("text", ["Hello there.", "  spaced   out  ", "", "one"])
def test_pieces_join_back_to_the_text(text: str) -> None:
    assert "".join(split_into_pieces(text)) == text
