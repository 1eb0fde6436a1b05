"""The player's language: told from the line or passed on by STT, it reaches the prompt through the brain."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from host.brain.engine import NpcBrain
from host.brain.language import detect_language
from host.events import PlayerSaid, Position
from host.llm.openai_compat import OpenAICompatLLM
from host.llm.retry import RetryPolicy
from host.profiles.registry import ProfileRegistry
from host.store import Store
from host.store.memory import DbMemoryStore
from host.transcript.book import TranscriptBook
from tests.conftest import REPO_ROOT
from tests.doubles.openai_server import OpenAIWireServer


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Здравствуйте! Сколько стоит комната на ночь?", "ru"),
        ("Що ти тут робиш? Їжа є?", "uk"),
        ("How much does a room cost for the night?", "en"),
        ("Wo ist die Taverne und was kostet ein Zimmer?", "de"),
        ("Bonjour, où est la taverne ?", "fr"),
        ("¿Dónde está la posada?", "es"),
        ("こんにちは、部屋はいくらですか", "ja"),
        ("Ok", None),
        ("12345!", None),
    ],
)
def test_the_language_of_a_line(text: str, language: str | None) -> None:
    assert detect_language(text) == language


@contextlib.asynccontextmanager
async def brain_and_server(
    tmp_path: Path, reply: str, profiles: Path = REPO_ROOT / "npc_profiles"
) -> AsyncIterator[tuple[NpcBrain, OpenAIWireServer]]:
    registry = ProfileRegistry(profiles)
    await registry.reload()
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'npc.db'}")
    async with OpenAIWireServer(replies=[reply]) as server:
        llm = OpenAICompatLLM(server.base_url, "double", retry=RetryPolicy(retries=0))
        try:
            yield (
                NpcBrain(registry, store, DbMemoryStore(store.db), TranscriptBook(tmp_path / "t"), lambda _: llm),
                server,
            )
        finally:
            await llm.aclose()
            await store.close()


async def test_the_language_stt_heard_reaches_the_prompt(tmp_path: Path) -> None:
    # "Hallo Bram" alone names no language; STT (a multilingual Whisper) heard German.
    said = PlayerSaid(
        server="example",
        player="Alice",
        text="Hallo Bram",
        source="voice",
        language="de",
        position=Position(x=4, y=64, z=-3),
    )
    async with brain_and_server(tmp_path, "Guten Abend, Reisende.") as (brain, server):
        turn = await brain.start(said, "bram")
        async with contextlib.aclosing(turn.persona.stream()) as events:
            async for _ in events:
                pass
    final = server.chat_bodies[0]["messages"][-1]
    assert final["role"] == "user"
    assert final["content"].endswith("[Alice speaks German: answer in German.]\nAlice: Hallo Bram")
    result = turn.persona.result
    assert result is not None and result.reply == "Guten Abend, Reisende."  # a German reply is speech, kept whole


async def test_a_pinned_language_reaches_the_backend_in_the_system_message(tmp_path: Path) -> None:
    # A server owner whose model speaks Russian pins it in the profile: every turn asks for it, whatever the line.
    profiles = tmp_path / "profiles"
    shutil.copytree(REPO_ROOT / "npc_profiles" / "example", profiles / "example")
    bram = profiles / "example" / "bram.toml"
    bram.write_text(bram.read_text().replace("[persona]\n", '[persona]\nlanguage = "ru"\n', 1), encoding="utf-8")
    said = PlayerSaid(
        server="example", player="Alice", text="Hello Bram", source="chat", position=Position(x=4, y=64, z=-3)
    )
    async with brain_and_server(tmp_path, "Добрый вечер, путник.", profiles) as (brain, server):
        turn = await brain.start(said, "bram")
        async with contextlib.aclosing(turn.persona.stream()) as events:
            async for _ in events:
                pass
    messages = server.chat_bodies[0]["messages"]
    assert [m["role"] for m in messages].count("system") == 1
    assert "- Always speak Russian." in messages[0]["content"]
    assert "Answer in the language the person speaks to you." not in messages[0]["content"]
    assert messages[-1] == {"role": "user", "content": "Alice: Hello Bram"}  # no per-turn language note needed
    result = turn.persona.result
    assert result is not None and result.reply == "Добрый вечер, путник."
