"""The brain counts hearing ranges from where NPCs stand in the game, not only from their profile spot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from host.brain.engine import NpcBrain
from host.events import EntityPosition, PlayerSaid, Position, Positions
from host.llm.base import LLM
from host.profiles.registry import ProfileRegistry
from host.profiles.schema import NpcProfile
from host.store import Store
from host.store.memory import DbMemoryStore
from host.transcript.book import TranscriptBook
from tests.conftest import REPO_ROOT


def _no_llm(npc: NpcProfile) -> LLM:
    raise AssertionError(f"addressing must not need {npc.id}'s model")


@pytest.fixture
async def brain(tmp_path: Path) -> AsyncIterator[NpcBrain]:
    registry = ProfileRegistry(REPO_ROOT / "npc_profiles")
    await registry.reload()
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'npc.db'}")
    yield NpcBrain(registry, store, DbMemoryStore(store.db), TranscriptBook(tmp_path / "t"), _no_llm)
    await store.close()


def _said_at(x: float, z: float, text: str = "Hello there") -> PlayerSaid:
    return PlayerSaid(server="example", player="Alice", text=text, position=Position(x=x, y=64.0, z=z))


async def test_an_npc_moved_in_game_is_heard_where_it_now_stands(brain: NpcBrain) -> None:
    far_away = _said_at(200.0, 200.0, "Bram, are you there?")
    assert brain.addressing(far_away).responders == ()

    brain.track(
        Positions(
            server="example",
            entities=[EntityPosition(name="bram", kind="npc", x=201.0, y=64.0, z=199.0)],
        )
    )

    assert brain.addressing(far_away).responders == ("bram",)
    assert brain.addressing(_said_at(4.5, -3.5, "Bram?")).responders == ()  # no longer behind his bar


async def test_a_paused_npc_neither_hears_nor_answers(brain: NpcBrain) -> None:
    at_the_bar = _said_at(4.5, -2.0, "Bram, a cider please")
    assert brain.addressing(at_the_bar).responders == ("bram",)
    await brain.pause("example", "bram", True)
    assert "bram" not in brain.addressing(at_the_bar).hearers
    await brain.pause("example", "bram", False)
    assert brain.addressing(at_the_bar).responders == ("bram",)


async def test_a_pause_holds_in_every_brain_process(brain: NpcBrain) -> None:
    other = NpcBrain(brain.registry, brain.store, brain.memory, brain.transcripts, _no_llm)  # another process's
    at_the_bar = _said_at(4.5, -2.0, "Bram, a cider please")
    await brain.pause("example", "bram", True)

    await other.sync_paused("example")
    assert other.addressing(at_the_bar).responders == ()

    await brain.pause("example", "bram", False)
    await other.sync_paused("example")
    assert other.addressing(at_the_bar).responders == ("bram",)
