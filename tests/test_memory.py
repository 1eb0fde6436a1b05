"""Conversation memory on disk: the window folds into a summary, a restart remembers, corrupt files never crash it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from host.config import Settings
from host.events import AdminNote
from host.memory import Conversation, FileMemoryStore, NpcNote, RememberedExchange
from host.store.records import ConversationKey

ALICE = ConversationKey(server="village", npc="bram", player="Alice")
BOB = ConversationKey(server="village", npc="bram", player="Bob")


class RecordingSummarizer:
    """Our own seam, not an external service: summarizes by listing what the player asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.fail = False

    async def __call__(self, old_summary: str, exchanges: Sequence[RememberedExchange]) -> str:
        self.calls.append((old_summary, [e.player_text for e in exchanges]))
        if self.fail:
            raise RuntimeError("model crashed")
        return " ".join([old_summary, *(f"asked {e.player_text};" for e in exchanges)])


def json_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.json"))


def said(n: int, **extra: object) -> RememberedExchange:
    return RememberedExchange(player_text=f"q{n}", npc_reply=f"a{n}", **extra)


async def test_window_overflow_folds_the_oldest_into_the_summary(tmp_path: Path) -> None:
    memory, summarize = FileMemoryStore(tmp_path, window=4, fold_batch=2), RecordingSummarizer()

    for n in range(1, 5):
        await memory.record(ALICE, said(n), summarize)
    assert summarize.calls == []
    after = await memory.record(ALICE, said(5), summarize)

    assert summarize.calls == [("", ["q1", "q2"])]
    assert after.summary == "asked q1; asked q2;"
    assert [e.player_text for e in after.exchanges] == ["q3", "q4", "q5"]

    for n in range(6, 8):
        after = await memory.record(ALICE, said(n), summarize)
    assert summarize.calls[-1] == ("asked q1; asked q2;", ["q3", "q4"])
    assert [e.player_text for e in after.exchanges] == ["q5", "q6", "q7"]


async def test_a_failing_summarizer_loses_no_exchange(tmp_path: Path) -> None:
    memory, summarize = FileMemoryStore(tmp_path, window=2, fold_batch=1), RecordingSummarizer()
    summarize.fail = True

    for n in range(1, 5):
        await memory.record(ALICE, said(n), summarize)
    summarize.fail = False
    after = await memory.record(ALICE, said(5), summarize)

    assert after.summary == "asked q1; asked q2; asked q3;"
    assert [e.player_text for e in after.exchanges] == ["q4", "q5"]


async def test_a_new_instance_remembers_conversations_and_notes(tmp_path: Path) -> None:
    memory, summarize = FileMemoryStore(tmp_path, window=2, fold_batch=1), RecordingSummarizer()
    for n in range(1, 4):
        await memory.record(ALICE, said(n, interrupted=n == 3, turn_id=f"t{n}"), summarize)
    await memory.record(BOB, said(9), summarize)
    await memory.add_note("village", "bram", NpcNote(id="n1", author="admin", text="Alice owes 3 coins.", ts=1.0))

    again = FileMemoryStore(tmp_path, window=2, fold_batch=1)
    alice = await again.conversation(ALICE)

    assert alice.summary == "asked q1;"
    assert [(e.player_text, e.interrupted) for e in alice.exchanges] == [("q2", False), ("q3", True)]
    assert [e.player_text for e in (await again.conversation(BOB)).exchanges] == ["q9"]
    assert [n.text for n in await again.notes("village", "bram")] == ["Alice owes 3 coins."]
    assert (await again.conversation(ConversationKey(server="village", npc="elda", player="Alice"))).exchanges == ()


async def test_corrections_replace_the_reply_and_are_remembered(tmp_path: Path) -> None:
    memory, summarize = FileMemoryStore(tmp_path), RecordingSummarizer()
    await memory.record(ALICE, said(1, turn_id="t1", ts=1.0), summarize)
    await memory.record(BOB, said(2, turn_id="t2", ts=2.0), summarize)

    latest = await memory.correct("village", "bram", "The ale costs two coins.")
    by_turn = await memory.correct("village", "bram", "Welcome, Alice.", turn_id="t1")
    missing = await memory.correct("village", "bram", "x", turn_id="nope")

    assert latest is not None and latest.key == BOB
    assert by_turn is not None and by_turn.key == ALICE
    assert missing is None
    restarted = FileMemoryStore(tmp_path)
    assert [(e.npc_reply, e.corrected) for e in (await restarted.conversation(ALICE)).exchanges] == [
        ("Welcome, Alice.", True)
    ]
    assert [(e.npc_reply, e.corrected) for e in (await restarted.conversation(BOB)).exchanges] == [
        ("The ale costs two coins.", True)
    ]


async def test_notes_stand_until_removed_are_stored_once_and_capped(tmp_path: Path) -> None:
    memory = FileMemoryStore(tmp_path, max_notes=3)
    event = AdminNote(server="village", npc="bram", author="transcript", text="first")
    await memory.add_note("village", "bram", NpcNote.from_event(event))
    await memory.add_note("village", "bram", NpcNote.from_event(event))  # delivered again (at least once)
    for n in range(2, 5):
        await memory.add_note("village", "bram", NpcNote(id=f"n{n}", author="admin", text=f"note {n}", ts=float(n)))

    assert [n.text for n in await memory.notes("village", "bram")] == ["note 2", "note 3", "note 4"]
    assert await memory.remove_note("village", "bram", "n3") is True
    assert await memory.remove_note("village", "bram", "n3") is False
    assert [n.text for n in await FileMemoryStore(tmp_path).notes("village", "bram")] == ["note 2", "note 4"]
    assert await memory.notes("village", "elda") == ()


async def test_a_corrupt_file_is_moved_aside_and_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    memory, summarize = FileMemoryStore(tmp_path), RecordingSummarizer()
    await memory.record(ALICE, said(1), summarize)
    path = next(p for p in json_files(tmp_path) if p.name == "Alice.json")
    path.write_text('{"version": 1, "key": {"server": "village"')

    fresh = await FileMemoryStore(tmp_path).conversation(ALICE)

    assert fresh == Conversation(key=ALICE)
    aside = [p for p in path.parent.iterdir() if p.name.startswith("Alice.json.corrupt-")]
    assert len(aside) == 1
    assert str(path) in caplog.text and str(aside[0]) in caplog.text
    await FileMemoryStore(tmp_path).record(ALICE, said(2), summarize)
    assert [e.player_text for e in (await FileMemoryStore(tmp_path).conversation(ALICE)).exchanges] == ["q2"]


@pytest.mark.parametrize("player", ["..", ".hidden", "a/b", "Steve Jobs", "名前"])
async def test_any_player_name_stays_inside_the_memory_directory(tmp_path: Path, player: str) -> None:
    root = tmp_path / "memory"
    key = ConversationKey(server="village", npc="bram", player=player)
    memory = FileMemoryStore(root)
    await memory.record(key, said(1, turn_id="t1"), RecordingSummarizer())

    assert [p for p in json_files(tmp_path) if root not in p.parents] == []
    assert await FileMemoryStore(root).correct("village", "bram", "fixed", turn_id="t1") is not None
    assert (await FileMemoryStore(root).conversation(key)).exchanges[0].npc_reply == "fixed"


async def test_memory_lives_under_the_data_dir(tmp_path: Path) -> None:
    memory = FileMemoryStore.from_settings(Settings(data_dir=tmp_path))
    await memory.record(ALICE, said(1), RecordingSummarizer())

    assert [p.relative_to(tmp_path).as_posix() for p in json_files(tmp_path)] == [
        "memory/village/bram/players/Alice.json"
    ]
