"""The rolling summary: when an NPC's memory window overflows, the same model folds the oldest exchanges into a few
sentences of facts (DESIGN.md, "The turn", step 3)."""

from __future__ import annotations

from collections.abc import Sequence

from host.brain.prompt import quote_player_line
from host.llm.base import LLM, ChatMessage, GenerationOptions, close_stream
from host.memory import RememberedExchange, Summarizer

_OPTIONS = GenerationOptions(temperature=0.2, max_tokens=160)


def llm_summarizer(llm: LLM, npc_name: str, player: str) -> Summarizer:
    async def summarize(old_summary: str, exchanges: Sequence[RememberedExchange]) -> str:
        lines = [
            f"{quote_player_line(player, exchange.player_text)}\n{npc_name} answered: {exchange.npc_reply}"
            for exchange in exchanges
        ]
        messages = (
            ChatMessage(
                role="system",
                content=(
                    f"You keep {npc_name}'s memory of talks with {player}. Write at most four short sentences of "
                    "facts worth remembering: names, promises, deals, feelings. No dialogue, no commentary."
                ),
            ),
            ChatMessage(
                role="user",
                content=f"Earlier summary: {old_summary or '(none)'}\n\nNew exchanges:\n" + "\n".join(lines),
            ),
        )
        stream = llm.stream(messages, _OPTIONS)
        try:
            pieces = [piece async for piece in stream]
        finally:
            await close_stream(stream)  # cancelled (host shutting down): stop generating now, not at GC
        return "".join(pieces).strip() or old_summary

    return summarize
