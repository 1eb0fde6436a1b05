"""Conversation memory in the database (`DbMemoryStore`), on SQLite and PostgreSQL: the same behaviour as the file
store, shared by every process that opens the database."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from host.events import AdminNote
from host.memory import NpcNote, RememberedExchange
from host.store import ConversationKey, Store, TurnRecord
from host.store.memory import DbMemoryStore


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


def said(n: int, **extra: object) -> RememberedExchange:
    return RememberedExchange(player_text=f"q{n}", npc_reply=f"a{n}", **extra)


pytest_plugins = ["tests.store_fixtures"]

ALICE = ConversationKey(server="village", npc="bram", player="Alice")
BOB = ConversationKey(server="village", npc="bram", player="Bob")


async def test_window_overflow_folds_the_oldest_into_the_summary(store: Store) -> None:
    memory, summarize = DbMemoryStore(store.db, window=4, fold_batch=2), RecordingSummarizer()

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
    # Folded turns leave memory's window, not the database: the admin page still lists all of them.
    assert len(await store.conversations.recent_exchanges(ALICE, limit=100)) == 7


async def test_a_failing_summarizer_loses_no_exchange(store: Store) -> None:
    memory, summarize = DbMemoryStore(store.db, window=2, fold_batch=1), RecordingSummarizer()
    summarize.fail = True

    for n in range(1, 5):
        await memory.record(ALICE, said(n), summarize)
    summarize.fail = False
    after = await memory.record(ALICE, said(5), summarize)

    assert after.summary == "asked q1; asked q2; asked q3;"
    assert [e.player_text for e in after.exchanges] == ["q4", "q5"]


async def test_another_process_sees_the_same_memory(store: Store) -> None:
    memory, summarize = DbMemoryStore(store.db, window=2, fold_batch=1), RecordingSummarizer()
    for n in range(1, 4):
        await memory.record(ALICE, said(n, interrupted=n == 3, turn_id=f"t{n}"), summarize)
    await memory.record(BOB, said(9), summarize)
    await memory.add_note("village", "bram", NpcNote(id="n1", author="admin", text="Alice owes 3 coins.", ts=1.0))

    other = await Store.open(store.db.url.render_as_string(False))
    try:
        again = DbMemoryStore(other.db, window=2, fold_batch=1)
        alice = await again.conversation(ALICE)
        assert alice.summary == "asked q1;"
        assert [(e.player_text, e.interrupted) for e in alice.exchanges] == [("q2", False), ("q3", True)]
        assert [e.player_text for e in (await again.conversation(BOB)).exchanges] == ["q9"]
        assert [n.text for n in await again.notes("village", "bram")] == ["Alice owes 3 coins."]
        assert (await again.conversation(ALICE.model_copy(update={"npc": "elda"}))).exchanges == ()
    finally:
        await other.close()


async def test_a_turn_recorded_with_its_timings_is_not_stored_twice(store: Store) -> None:
    memory = DbMemoryStore(store.db)
    turn = TurnRecord(
        server="village",
        npc="bram",
        player="Alice",
        cause_id="said-1",
        turn_id="t1",
        source="voice",
        player_text="q1",
        npc_reply="a1",
        timings_ms={"stt": 260.0},
    )
    assert await store.conversations.record_turn(turn)

    after = await memory.record(ALICE, said(1, turn_id="t1"), RecordingSummarizer())

    assert [e.player_text for e in after.exchanges] == ["q1"]
    [stored] = await store.conversations.recent_exchanges(ALICE)
    assert (stored.source, stored.timings_ms) == ("voice", {"stt": 260.0})


async def test_corrections_replace_the_reply_and_are_remembered(store: Store) -> None:
    memory, summarize = DbMemoryStore(store.db), RecordingSummarizer()
    await memory.record(ALICE, said(1, turn_id="t1", ts=1.0), summarize)
    await memory.record(BOB, said(2, turn_id="t2", ts=2.0), summarize)

    latest = await memory.correct("village", "bram", "The ale costs two coins.")
    by_turn = await memory.correct("village", "bram", "Welcome, Alice.", turn_id="t1")

    assert latest is not None and latest.key == BOB
    assert by_turn is not None and by_turn.key == ALICE
    assert await memory.correct("village", "bram", "x", turn_id="nope") is None
    assert await memory.correct("village", "elda", "x") is None
    restarted = DbMemoryStore(store.db)
    assert [(e.npc_reply, e.corrected) for e in (await restarted.conversation(ALICE)).exchanges] == [
        ("Welcome, Alice.", True)
    ]
    assert [(e.npc_reply, e.corrected) for e in (await restarted.conversation(BOB)).exchanges] == [
        ("The ale costs two coins.", True)
    ]


async def test_notes_stand_until_removed_are_stored_once_and_capped(store: Store) -> None:
    memory = DbMemoryStore(store.db, max_notes=3)
    event = AdminNote(server="village", npc="bram", author="transcript", text="first")
    await memory.add_note("village", "bram", NpcNote.from_event(event))
    await memory.add_note("village", "bram", NpcNote.from_event(event))  # delivered again (at least once)
    for n in range(2, 5):
        await memory.add_note("village", "bram", NpcNote(id=f"n{n}", author="admin", text=f"note {n}", ts=float(n)))

    assert [n.text for n in await memory.notes("village", "bram")] == ["note 2", "note 3", "note 4"]
    assert await memory.remove_note("village", "bram", "n3") is True
    assert await memory.remove_note("village", "bram", "n3") is False
    assert [n.text for n in await DbMemoryStore(store.db).notes("village", "bram")] == ["note 2", "note 4"]
    assert await memory.notes("village", "elda") == ()
    # The admin page keeps the record of what was withdrawn.
    assert len(await store.steering.list_notes("village", "bram", include_removed=True)) == 4


async def test_concurrent_lines_of_one_conversation_are_each_summarized_once(store: Store) -> None:
    memory, summarize = DbMemoryStore(store.db, window=4, fold_batch=2), RecordingSummarizer()

    await asyncio.gather(*(memory.record(ALICE, said(n, ts=1000.0 + n), summarize) for n in range(1, 10)))

    folded = [text for _, batch in summarize.calls for text in batch]
    assert sorted(folded, key=lambda text: int(text[1:])) == folded  # oldest first, none twice
    remembered = [e.player_text for e in (await memory.conversation(ALICE)).exchanges]
    assert folded + remembered == [f"q{n}" for n in range(1, 10)]
    assert memory._locks == {}  # a lock per conversation ever met would grow without end
