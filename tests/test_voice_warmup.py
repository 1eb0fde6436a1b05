"""Persona warm-up: a throwaway first turn per NPC, sent only where the prefix cache lives in this process."""

from __future__ import annotations

from pathlib import Path

from host.brain.engine import NpcBrain
from host.llm.ollama_backend import OllamaLLM
from host.profiles.registry import ProfileRegistry
from host.profiles.schema import NpcProfile
from host.store import Store
from host.store.memory import DbMemoryStore
from host.transcript.book import TranscriptBook
from host.voice.warmup import warm_personas
from tests.conftest import REPO_ROOT
from tests.doubles.ollama_server import OllamaWireServer


async def _brain(tmp_path: Path, url: str) -> tuple[NpcBrain, Store]:
    registry = ProfileRegistry(REPO_ROOT / "npc_profiles")
    await registry.reload()
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'npc.db'}")
    llm = OllamaLLM(url, "test-model")

    def llm_for(_npc: NpcProfile) -> OllamaLLM:
        return llm

    return NpcBrain(registry, store, DbMemoryStore(store.db), TranscriptBook(tmp_path / "t"), llm_for), store


async def test_warm_up_reads_every_persona_once_and_records_nothing(tmp_path: Path) -> None:
    async with OllamaWireServer(replies=["Welcome, friend. Sit down."] * 3) as server:
        brain, store = await _brain(tmp_path, server.url)
        try:
            spent = await warm_personas(brain, "example")
            assert sorted(spent) == ["birch", "bram", "hilde"]
            assert len(server.chat_bodies) == 3
            assert await store.conversations.turn_counts("example") == {}
            assert not (tmp_path / "t").exists()  # no transcript lines for a warm-up
        finally:
            await store.close()


async def test_remote_backends_are_not_warmed_by_the_brain_role(tmp_path: Path) -> None:
    async with OllamaWireServer(replies=["Hello."]) as server:
        brain, store = await _brain(tmp_path, server.url)
        try:
            assert await warm_personas(brain, "example", embedded_only=True) == {}
            assert server.chat_bodies == []
        finally:
            await store.close()
