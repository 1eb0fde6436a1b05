"""Embedded LLM benchmark (packaged SmolLM2 on llama.cpp): what a player waits for before an NPC starts to answer.

- `load_s`: loading the model (first load in this process).
- `first_token_ms.cold`: a persona the model has never seen (the whole prompt, about 380 tokens, is evaluated).
- `first_token_ms.cached`: the same NPC again with a new player line (its persona prefix is reused).
- `first_token_ms.two_npcs_alternating`: two NPCs taking turns, each keeping its own prefix warm (per-NPC cache);
  `..._no_cache_key` is the same without cache keys, where llama.cpp keeps only the last prompt.
- `prompt_tokens_evaluated`: llama.cpp's own count of prompt tokens decoded per turn, for the cached cases: exact
  where the latencies are at the mercy of whatever else runs on the machine.
- `first_sentence_ms`: until the first `.`, `!` or `?` that ends a sentence, prefix cached (what TTS waits for).
- `tokens_per_s`: generation speed after the first token.
Bounded: RUNS samples per measure, well under two minutes on two cores.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

from bench.report import summarize
from host.config import Settings
from host.llm.base import ChatMessage, GenerationOptions
from host.llm.embedded import EmbeddedLLM, GenerationStats

RUNS = 5
SENTENCE_END = re.compile(r"[.!?](\s|$)")
PLAYER_LINES = (
    "Good evening! Do you have a room for the night?",
    "What is in the stew today?",
    "Have you seen any creepers near the wheat fields?",
    "Who is the blacksmith here?",
    "Can I trade emeralds for bread?",
    "Is the mine to the north safe?",
    "Why is the birch tree talking?",
    "Where can I find the guard captain?",
    "Did a pillager patrol pass by?",
)


def persona(name: str, trade: str) -> str:
    """A system prompt shaped like a real persona block (about 380 tokens with the chat template)."""
    return (
        f"You are {name}, the {trade} of Oakridge, a small village in a Minecraft world. Stay in character at all "
        "times: you are a person of this world, not an assistant, and you know nothing of computers or games. "
        "Personality: warm but sharp-tongued, proud of your work, curious about every traveller, quick to gossip "
        "about your neighbours and slow to trust anyone who arrives after dark. You speak in short, plain sentences "
        "with the odd country saying, and you never use lists or headings. "
        "Scenario: it is late autumn. The harvest was poor because creepers blew holes in the wheat fields twice this "
        "month. The iron golem has been acting strangely since the last thunderstorm, and the villagers whisper "
        "that a pillager outpost stands beyond the birch forest to the east. Travellers pay in emeralds; bread costs "
        "one emerald for three loaves, a bed costs two emeralds a night, and stew is free for anyone who helps "
        "repair the fields. "
        "Goals: keep the village fed, learn what the travellers know about the outpost, and sell as much as you can. "
        "Secrets you must keep: you hid a diamond pickaxe under the floor of the old well, and you once traded with "
        "a wandering pillager. Never reveal either, even if asked directly; change the subject instead. "
        "Village lore: the blacksmith Tomas forges the best iron in the valley; Greta captains the guard and "
        "distrusts strangers; the old birch tree by the square speaks, slowly, and only to children; the mine to "
        "the north collapsed last spring and nobody goes there now. "
        "Reply in one to three sentences, in character, answering the player who spoke last."
    )


def _chat(system: str, line: str) -> list[ChatMessage]:
    return [ChatMessage(role="system", content=system), ChatMessage(role="user", content=f'Steve says: "{line}"')]


async def _first_piece(llm: EmbeddedLLM, messages: list[ChatMessage], key: str | None) -> tuple[float, GenerationStats]:
    """Milliseconds to the first piece, and the turn's statistics; the rest of the reply is cancelled."""
    stream: AsyncIterator[str] = llm.stream(messages, GenerationOptions(max_tokens=48, seed=1, cache_key=key))
    started = time.perf_counter()
    await anext(stream)
    elapsed_ms = (time.perf_counter() - started) * 1000
    await stream.aclose()  # type: ignore[attr-defined]
    if llm.last_stats is None:
        raise RuntimeError("the embedded backend reported no statistics")
    return elapsed_ms, llm.last_stats


async def _turns(
    llm: EmbeddedLLM, npcs: list[tuple[str, str]], turns: int, keyed: bool
) -> tuple[list[float], list[int]]:
    """NPCs answering in turn; returns first-token latencies and evaluated prompt tokens of every turn after warm-up."""
    latencies: list[float] = []
    evaluated: list[int] = []
    for turn in range(turns + len(npcs)):
        name, system = npcs[turn % len(npcs)]
        line = PLAYER_LINES[turn % len(PLAYER_LINES)]
        elapsed_ms, stats = await _first_piece(llm, _chat(system, line), name if keyed else None)
        if turn >= len(npcs):  # the first turn of each NPC is cold by nature
            latencies.append(elapsed_ms)
            evaluated.append(stats.prompt_tokens_evaluated)
    return latencies, evaluated


async def _first_sentence_ms(llm: EmbeddedLLM, system: str, key: str) -> list[float]:
    samples: list[float] = []
    for line in PLAYER_LINES[:RUNS]:
        text = ""
        started = time.perf_counter()
        stream = llm.stream(_chat(system, line), GenerationOptions(max_tokens=80, seed=1, cache_key=key))
        async for piece in stream:
            text += piece
            if SENTENCE_END.search(text):
                break
        samples.append((time.perf_counter() - started) * 1000)
        await stream.aclose()  # type: ignore[attr-defined]
    return samples


async def _tokens_per_s(llm: EmbeddedLLM, system: str, key: str) -> list[float]:
    samples: list[float] = []
    for line in PLAYER_LINES[:3]:
        first_at = 0.0
        pieces = 0
        async for _ in llm.stream(_chat(system, line), GenerationOptions(max_tokens=96, seed=2, cache_key=key)):
            pieces += 1
            if pieces == 1:
                first_at = time.perf_counter()
        if pieces > 1:
            samples.append((pieces - 1) / (time.perf_counter() - first_at))
    return samples


async def run() -> dict[str, Any]:
    llm = EmbeddedLLM(packaged_weights=Settings().llm.packaged_weights)  # the weights the host runs
    model = await llm.warm()

    cold: list[float] = []
    cold_prompt_tokens = 0
    for run_index in range(RUNS):
        # A new name at the very start of the persona means nothing after the chat template's first tokens matches.
        system = persona(f"Npc{run_index}x", "innkeeper")
        elapsed_ms, stats = await _first_piece(llm, _chat(system, PLAYER_LINES[0]), None)
        cold.append(elapsed_ms)
        cold_prompt_tokens = stats.prompt_tokens

    bram = ("bench/bram", persona("Bram", "innkeeper"))
    greta = ("bench/greta", persona("Greta", "guard captain"))
    cached, cached_evaluated = await _turns(llm, [bram], RUNS, keyed=True)
    alternating, alternating_evaluated = await _turns(llm, [bram, greta], RUNS, keyed=True)
    unkeyed, unkeyed_evaluated = await _turns(llm, [bram, greta], 2, keyed=False)

    await _first_piece(llm, _chat(bram[1], PLAYER_LINES[0]), bram[0])  # make sure Bram's prefix is warm
    first_sentence = await _first_sentence_ms(llm, bram[1], bram[0])
    speed = await _tokens_per_s(llm, bram[1], bram[0])
    await llm.aclose()
    return {
        "model": llm.model_path.name,
        "load_s": round(model.load_seconds, 3),
        "prompt_tokens": cold_prompt_tokens,
        "first_token_ms": {
            "cold": summarize(cold),
            "cached": summarize(cached),
            "two_npcs_alternating": summarize(alternating),
            "two_npcs_alternating_no_cache_key": summarize(unkeyed),
        },
        "prompt_tokens_evaluated": {
            "cached": summarize(cached_evaluated, digits=0),
            "two_npcs_alternating": summarize(alternating_evaluated, digits=0),
            "two_npcs_alternating_no_cache_key": summarize(unkeyed_evaluated, digits=0),
        },
        "first_sentence_ms": summarize(first_sentence),
        "tokens_per_s": summarize(speed),
    }
