"""The embedded llama.cpp backend on the packaged SmolLM2 (the model loads once per test process)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from host.llm.base import ChatMessage, GenerationOptions, LLMError
from host.llm.embedded import EmbeddedLLM, GenerationStats

BRAM = (
    "You are Bram, the innkeeper of the Oak Barrel in a Minecraft village. You are warm, a little nosy, and proud of "
    "your mushroom stew. You know every villager by name and you never talk about the world outside the game. "
) * 3
GRETA = (
    "You are Greta, captain of the village guard. You are curt, suspicious of strangers after dark, and you keep "
    "the iron golem's schedule in your head. You answer in short sentences and never joke about creepers. "
) * 3
SHORT = "You are Bram, the innkeeper of a Minecraft village."


# At temperature 0 SmolLM2 answers this with digits up to any token limit, so a reply is still running when cancelled.
ENDLESS = [ChatMessage(role="user", content="Count from 1 to 300, separated by commas.")]
ENDLESS_OPTIONS = GenerationOptions(max_tokens=400, temperature=0.0)


def _chat(persona: str, line: str) -> list[ChatMessage]:
    return [ChatMessage(role="system", content=persona), ChatMessage(role="user", content=f'Steve says: "{line}"')]


async def _reply(llm: EmbeddedLLM, persona: str, line: str, key: str | None) -> GenerationStats:
    options = GenerationOptions(max_tokens=8, seed=1, temperature=0.0, cache_key=key)
    pieces = [piece async for piece in llm.stream(_chat(persona, line), options)]
    assert pieces
    assert llm.last_stats is not None
    return llm.last_stats


async def test_streams_a_nonempty_reply_from_the_packaged_model() -> None:
    llm = EmbeddedLLM()
    options = GenerationOptions(max_tokens=24, seed=7, temperature=0.0)
    pieces = [piece async for piece in llm.stream(_chat(SHORT, "Hello! Any stew today?"), options)]
    await llm.aclose()

    assert len(pieces) > 1
    assert "".join(pieces).strip()
    assert "<|im_end|>" not in "".join(pieces)  # the model's own chat template and its stop token are in use
    assert llm.last_stats is not None
    assert not llm.last_stats.cancelled
    assert llm.last_stats.pieces == len(pieces)


async def test_closing_the_iteration_stops_generation_early() -> None:
    llm = EmbeddedLLM()
    stream = llm.stream(ENDLESS, ENDLESS_OPTIONS)
    assert await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]

    assert llm.last_stats is not None
    assert llm.last_stats.cancelled
    assert llm.last_stats.pieces < 40


async def test_a_reader_that_stops_pulling_pauses_generation() -> None:
    """The voice path stops reading after the first sentence while its audio is made on the same cores: the worker
    writes no piece nobody asked for, however long the pause (here long enough for dozens)."""
    llm = EmbeddedLLM()
    stream = llm.stream(ENDLESS, ENDLESS_OPTIONS)
    assert await anext(stream)
    await asyncio.sleep(1.5)  # not a timing assertion: the bound below holds for any pause
    await stream.aclose()  # type: ignore[attr-defined]

    assert llm.last_stats is not None
    assert llm.last_stats.pieces == 1  # the one read; the next token was never computed


async def test_cancelling_the_consuming_task_stops_generation() -> None:
    llm = EmbeddedLLM()
    first_piece = asyncio.Event()

    async def consume() -> None:
        async for _ in llm.stream(ENDLESS, ENDLESS_OPTIONS):
            first_piece.set()

    task = asyncio.create_task(consume())
    await first_piece.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert llm.last_stats is not None
    assert llm.last_stats.cancelled
    assert llm.last_stats.pieces < 40


async def test_concurrent_replies_are_serialized_and_both_complete() -> None:
    llm = EmbeddedLLM()
    options = GenerationOptions(max_tokens=12, seed=3)

    async def reply(line: str) -> str:
        return "".join([piece async for piece in llm.stream(_chat(SHORT, line), options)])

    first, second = await asyncio.gather(reply("Good morning!"), reply("Any rooms free?"))
    assert first.strip()
    assert second.strip()


async def test_each_npc_reuses_its_persona_prefix_while_npcs_alternate() -> None:
    llm = EmbeddedLLM()
    bram_first = await _reply(llm, BRAM, "Hello there!", "example/bram")
    await _reply(llm, GRETA, "Evening, captain.", "example/greta")
    bram_second = await _reply(llm, BRAM, "Is the stew ready yet?", "example/bram")
    greta_second = await _reply(llm, GRETA, "Seen any zombies?", "example/greta")

    # llama.cpp's own count of prompt tokens it had to decode: the persona at first...
    assert bram_first.prompt_tokens_evaluated > 100
    # ...then only the new player line, although the other NPC's prompt ran in between.
    assert bram_second.prompt_tokens > 120
    assert bram_second.prompt_tokens_evaluated < 30
    assert bram_second.prompt_tokens_reused > 100
    assert greta_second.prompt_tokens_evaluated < 30


async def test_without_a_cache_key_alternating_npcs_evaluate_their_whole_prompt() -> None:
    llm = EmbeddedLLM()
    await _reply(llm, BRAM, "Hello there!", None)
    await _reply(llm, GRETA, "Evening, captain.", None)
    bram_again = await _reply(llm, BRAM, "Is the stew ready yet?", None)
    assert bram_again.prompt_tokens_evaluated > bram_again.prompt_tokens - 30


async def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    llm = EmbeddedLLM(missing)
    with pytest.raises(LLMError, match="model file not found") as failure:
        await anext(llm.stream(_chat(BRAM, "Hi"), GenerationOptions()))
    assert failure.value.where == str(missing)
    assert failure.value.backend == "embedded"


async def test_a_file_that_is_not_a_model_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    with pytest.raises(LLMError, match="could not load") as failure:
        await EmbeddedLLM(broken).warm()
    assert str(broken) in str(failure.value)
