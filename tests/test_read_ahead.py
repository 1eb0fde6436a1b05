"""Reading the next prompt ahead: after a turn is recorded, the same player's next line to that NPC evaluates only
its own notes and words on the embedded model; a remote backend is sent nothing extra."""

from __future__ import annotations

from pathlib import Path

from host.brain.engine import NpcBrain, StartedTurn
from host.brain.read_ahead import NextPromptReader
from host.brain.turn import TurnSentence
from host.events import PlayerSaid
from host.llm.base import LLM
from host.llm.embedded import EmbeddedLLM
from host.llm.ollama_backend import OllamaLLM
from host.profiles.registry import ProfileRegistry
from host.profiles.schema import NpcProfile
from host.store import Store
from host.store.memory import DbMemoryStore
from host.transcript.book import TranscriptBook
from tests.conftest import REPO_ROOT
from tests.doubles.ollama_server import OllamaWireServer

# The example village's inn keeper: his per-turn lore note makes each line's own message long (about 60 tokens).
NPC = "bram"


async def _brain(tmp_path: Path, llm: LLM) -> tuple[NpcBrain, Store]:
    registry = ProfileRegistry(REPO_ROOT / "npc_profiles")
    await registry.reload()
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'npc.db'}")

    def llm_for(_npc: NpcProfile) -> LLM:
        return llm

    return NpcBrain(registry, store, DbMemoryStore(store.db), TranscriptBook(tmp_path / "t"), llm_for), store


async def _unheard(_turn: StartedTurn, _sentence: TurnSentence) -> None:
    pass


def _line(text: str) -> PlayerSaid:
    return PlayerSaid(server="example", player="Alice", text=text)


async def test_the_next_turn_reads_only_its_own_message_after_reading_ahead(tmp_path: Path) -> None:
    llm = EmbeddedLLM()
    brain, store = await _brain(tmp_path, llm)
    reader = NextPromptReader(brain)
    try:
        assert await brain.answer(_line("Bram, do you have a room for the night?"), NPC, _unheard) is not None
        await reader.after(_line("Bram, do you have a room for the night?"), NPC)

        following = _line("And what does the stew cost, Bram?")
        own_message = (await brain.start(following, NPC)).persona.prompt()[-1].content
        model = await llm.warm()
        own_tokens = len(model.llama.tokenize(own_message.encode(), add_bos=False))
        assert await brain.answer(following, NPC, _unheard) is not None

        assert llm.last_stats is not None
        # Its own message (lore note and line) and the template's few tokens around it; without reading ahead the
        # earlier line and reply are evaluated again on top (about 30 tokens more).
        assert llm.last_stats.prompt_tokens_evaluated <= own_tokens + 8
    finally:
        await reader.aclose()
        await llm.aclose()
        await store.close()


async def test_a_remote_backend_is_sent_no_extra_request(tmp_path: Path) -> None:
    async with OllamaWireServer(replies=["Three emeralds a night, friend."]) as server:
        brain, store = await _brain(tmp_path, OllamaLLM(server.url, "test-model"))
        reader = NextPromptReader(brain)
        try:
            await brain.answer(_line("Bram, do you have a room for the night?"), NPC, _unheard)
            requests = len(server.chat_bodies)
            await reader.after(_line("Bram, do you have a room for the night?"), NPC)
            assert len(server.chat_bodies) == requests
        finally:
            await store.close()
