"""Line splitting of streamed HTTP bodies for the remote LLM backends: every line break style, bounded memory."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from host.llm.transport import LineTooLongError, bounded_lines


async def _lines(chunks: list[bytes], limit: int = 1 << 20) -> list[str]:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    response = httpx.Response(200, content=body())
    return [line async for line in bounded_lines(response, limit)]


async def test_lf_crlf_and_cr_end_lines_even_split_across_chunks() -> None:
    chunks = [b"data: a\r", b"\ndata: b\n\nda", b"ta: c\rdata: \xc3", b"\xa9\r", b"\n", b"tail"]
    assert await _lines(chunks) == ["data: a", "data: b", "", "data: c", "data: é", "tail"]


async def test_a_line_separator_inside_json_text_does_not_split_it() -> None:
    assert await _lines(['data: {"content": "a\u2028b"}\n'.encode()]) == ['data: {"content": "a\u2028b"}']


async def test_a_line_without_end_is_refused_once_past_the_limit() -> None:
    with pytest.raises(LineTooLongError, match="ran past 100 characters"):
        await _lines([b"ok\n", b"x" * 60, b"x" * 60, b"x" * 60], limit=100)
