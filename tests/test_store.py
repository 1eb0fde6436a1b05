"""Repository behaviour, run on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import select

from host.events import AdminNote
from host.store import (
    ConflictError,
    ConversationKey,
    NewAdminUser,
    NewCorrection,
    NewNote,
    NewRecommendation,
    NotFoundError,
    Store,
    TurnRecord,
)
from host.store.models import AdminUser

pytest_plugins = ["tests.store_fixtures"]

KEY = ConversationKey(server="survival", npc="Greta", player="Steve")
START = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def turn(cause: str, *, minute: int = 0, player: str = "Steve", npc: str = "Greta", **fields: object) -> TurnRecord:
    values: dict[str, object] = {
        "server": "survival",
        "npc": npc,
        "player": player,
        "cause_id": cause,
        "turn_id": f"turn-{cause}",
        "source": "chat",
        "player_text": f"question {cause}",
        "npc_reply": f"answer {cause}",
        "created_at": START + timedelta(minutes=minute),
    } | fields
    return TurnRecord.model_validate(values)


async def test_a_redelivered_turn_is_stored_once(store: Store) -> None:
    first = turn("evt-1", timings_ms={"stt": 250.0, "llm_first_sentence": 120.5}, emotion="happy", source="voice")

    assert await store.conversations.record_turn(first) is True
    assert await store.conversations.record_turn(first) is False
    assert await store.conversations.record_turn(first.model_copy(update={"npc_reply": "other"})) is False
    assert await store.conversations.record_turn(first.model_copy(update={"cause_id": "evt-again"})) is False

    [exchange] = await store.conversations.recent_exchanges(KEY)
    assert (exchange.player_text, exchange.npc_reply, exchange.source) == ("question evt-1", "answer evt-1", "voice")
    assert exchange.timings_ms == {"stt": 250.0, "llm_first_sentence": 120.5}
    assert exchange.emotion == "happy"
    assert await store.conversations.turn_counts("survival") == {"Greta": 1}


async def test_recent_exchanges_are_the_last_ones_oldest_first(store: Store) -> None:
    for minute in (3, 0, 4, 1, 2):  # recorded out of order, as two workers might
        await store.conversations.record_turn(turn(f"evt-{minute}", minute=minute))
    await store.conversations.record_turn(turn("alex-1", minute=9, player="Alex"))
    await store.conversations.record_turn(turn("bram-1", minute=9, npc="Bram"))

    recent = await store.conversations.recent_exchanges(KEY, limit=3)

    assert [e.cause_id for e in recent] == ["evt-2", "evt-3", "evt-4"]
    assert [e.player for e in recent] == ["Steve"] * 3
    assert len(await store.conversations.recent_exchanges(KEY, limit=50)) == 5
    assert await store.conversations.recent_exchanges(KEY.model_copy(update={"player": "Nobody"})) == []


async def test_timestamps_come_back_as_aware_utc(store: Store) -> None:
    local = datetime(2026, 11, 25, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    await store.conversations.record_turn(turn("evt-tz", created_at=local))

    [exchange] = await store.conversations.recent_exchanges(KEY)

    assert exchange.created_at == local
    assert exchange.created_at.utcoffset() == timedelta(0)


async def test_conversation_summary_is_set_and_replaced(store: Store) -> None:
    assert await store.conversations.get_summary(KEY) is None

    await store.conversations.set_summary(KEY, "Steve asked about the mine.")
    await store.conversations.set_summary(KEY, "Steve asked about the mine and paid 3 emeralds.")

    assert await store.conversations.get_summary(KEY) == "Steve asked about the mine and paid 3 emeralds."
    assert await store.conversations.get_summary(KEY.model_copy(update={"player": "Alex"})) is None


async def test_note_lifecycle(store: Store) -> None:
    event = AdminNote(server="survival", npc="Greta", author="ops", text="The bridge is out; send travellers north.")
    note = await store.steering.add_note(NewNote.from_event(event))
    again = await store.steering.add_note(NewNote.from_event(event))
    other = await store.steering.add_note(NewNote(server="survival", npc="Greta", author="ops", text="Be grumpy."))
    await store.steering.add_note(NewNote(server="survival", npc="Bram", author="ops", text="Not for Greta."))

    assert again.id == note.id
    standing = await store.steering.list_notes("survival", "Greta")
    assert [n.text for n in standing] == ["The bridge is out; send travellers north.", "Be grumpy."]
    assert all(n.standing for n in standing)

    removed = await store.steering.remove_note("survival", "Greta", note.id, removed_by="alice")
    assert removed.removed_by == "alice"
    assert not removed.standing
    assert [n.id for n in await store.steering.list_notes("survival", "Greta")] == [other.id]
    everything = await store.steering.list_notes("survival", "Greta", include_removed=True)
    assert [(n.id, n.standing) for n in everything] == [(note.id, False), (other.id, True)]

    with pytest.raises(NotFoundError, match="Bram on survival has no note"):
        await store.steering.remove_note("survival", "Bram", other.id, removed_by="alice")
    assert await store.steering.list_notes("survival", "Nobody") == []


async def test_a_correction_changes_what_memory_remembers(store: Store) -> None:
    await store.conversations.record_turn(turn("evt-1", minute=0))
    await store.conversations.record_turn(turn("evt-2", minute=1))

    latest = await store.steering.add_correction(
        NewCorrection(server="survival", npc="Greta", author="ops", text="The mine is closed.", event_id="c-1")
    )
    named = await store.steering.add_correction(
        NewCorrection(server="survival", npc="Greta", author="ops", text="Welcome!", turn_id="turn-evt-1")
    )

    assert (latest.turn_id, named.turn_id) == ("turn-evt-2", "turn-evt-1")
    exchanges = await store.conversations.recent_exchanges(KEY)
    assert [e.remembered_reply for e in exchanges] == ["Welcome!", "The mine is closed."]
    assert [e.npc_reply for e in exchanges] == ["answer evt-1", "answer evt-2"]
    with pytest.raises(NotFoundError, match="Greta on survival has no turn 'nope'"):
        await store.steering.add_correction(
            NewCorrection(server="survival", npc="Greta", author="ops", text="x", turn_id="nope")
        )


async def test_recommendations_newest_first_and_stored_once(store: Store) -> None:
    first = NewRecommendation(server="survival", npc="Greta", steering=["mention the festival"], event_id="r-1")
    second = NewRecommendation(
        server="survival", npc="Greta", facts=["Steve owns a horse"], mood="cheerful", warnings=["repeats"]
    )
    await store.steering.add_recommendation(first)
    await store.steering.add_recommendation(first)
    await store.steering.add_recommendation(second)

    recent = await store.steering.recent_recommendations("survival", "Greta")

    assert [(r.steering, r.facts, r.mood, r.warnings) for r in recent] == [
        ([], ["Steve owns a horse"], "cheerful", ["repeats"]),
        (["mention the festival"], [], None, []),
    ]
    assert len(await store.steering.recent_recommendations("survival", "Greta", limit=1)) == 1


async def test_turn_counts_per_npc_include_silent_npcs(store: Store) -> None:
    for i in range(3):
        await store.conversations.record_turn(turn(f"g-{i}", minute=i))
    await store.conversations.record_turn(turn("b-0", npc="Bram"))
    await store.steering.add_note(NewNote(server="survival", npc="Quiet", author="ops", text="Say nothing."))
    await store.conversations.record_turn(turn("other-server", server="creative"))

    assert await store.conversations.turn_counts("survival") == {"Greta": 3, "Bram": 1, "Quiet": 0}
    assert await store.conversations.turn_counts("unknown") == {}


async def test_admin_password_is_hashed_and_verified(store: Store) -> None:
    created = await store.admin_users.create(
        NewAdminUser(name="alice", password=SecretStr("hunter2-long"), role="admin")
    )

    assert created.role == "admin"
    assert created.last_login_at is None
    async with store.db.engine.connect() as conn:
        stored_hash = (await conn.execute(select(AdminUser.password_hash))).scalar_one()
    assert stored_hash.startswith("$argon2id$")
    assert "hunter2-long" not in stored_hash

    signed_in = await store.admin_users.verify("alice", SecretStr("hunter2-long"))
    assert signed_in is not None
    assert signed_in.name == "alice"
    assert signed_in.last_login_at is not None
    assert await store.admin_users.verify("alice", SecretStr("hunter2-wrong")) is None
    assert await store.admin_users.verify("mallory", SecretStr("hunter2-long")) is None
    assert [u.last_login_at for u in await store.admin_users.all_users()] == [signed_in.last_login_at]


async def test_admin_user_names_are_unique_and_passwords_long_enough(store: Store) -> None:
    await store.admin_users.create(NewAdminUser(name="bob", password=SecretStr("long enough"), role="viewer"))

    with pytest.raises(ConflictError, match="admin user 'bob' already exists"):
        await store.admin_users.create(NewAdminUser(name="bob", password=SecretStr("another one"), role="admin"))
    with pytest.raises(ValidationError, match="password"):
        NewAdminUser(name="carol", password=SecretStr("short"))
    with pytest.raises(ValidationError, match="role"):
        NewAdminUser.model_validate({"name": "carol", "password": "long enough", "role": "root"})
