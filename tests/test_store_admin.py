"""The admin page's records on SQLite and PostgreSQL: sessions (hashed ids, expiry, a cap per user, seen by a second
store on the same database), bridge tokens (shown once, stored salted and hashed, rotated and revoked with who and
when) and NPC mute held like pause."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pydantic import SecretStr
from sqlalchemy import text

from host.admin.sessions import SessionStore
from host.store import NewAdminUser, Store
from host.store.admin_sessions import MAX_SESSIONS_PER_USER

pytest_plugins = ["tests.store_fixtures"]


async def _all_text(store: Store, table: str) -> str:
    async with store.db.engine.connect() as conn:
        rows = (await conn.execute(text(f"SELECT * FROM {table}"))).all()
    return repr(rows)


async def _count(store: Store, table: str) -> int:
    async with store.db.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def _add_user(store: Store, name: str, role: str = "viewer") -> None:
    await store.admin_users.create(NewAdminUser(name=name, password=SecretStr("long enough pw"), role=role))  # type: ignore[arg-type]


async def test_a_session_is_seen_by_another_store_on_the_database_and_ends_on_sign_out(store: Store) -> None:
    await _add_user(store, "ada", "admin")
    session = await SessionStore(store.admin_sessions, 3600).open("ada")
    assert session.token not in await _all_text(store, "admin_sessions")  # only its hash is kept
    other = await Store.open(str(store.db.url.render_as_string(hide_password=False)))
    try:
        seen = await SessionStore(other.admin_sessions, 3600).get(session.token)
        assert seen is not None and (seen.user, seen.role, seen.csrf) == ("ada", "admin", session.csrf)
        await SessionStore(other.admin_sessions, 3600).close(session.token)
    finally:
        await other.close()
    assert await SessionStore(store.admin_sessions, 3600).get(session.token) is None
    assert await SessionStore(store.admin_sessions, 3600).get("not-a-session") is None


async def test_expired_sessions_are_refused_and_pruned(store: Store) -> None:
    await _add_user(store, "vic")
    short = SessionStore(store.admin_sessions, 0.2)
    expired = await short.open("vic")
    await asyncio.sleep(0.3)
    assert await short.get(expired.token) is None
    await store.admin_sessions.open("vic", timedelta(hours=1))  # opening one prunes the expired
    assert await _count(store, "admin_sessions") == 1


async def test_a_user_holds_a_bounded_number_of_sessions_the_oldest_end_first(store: Store) -> None:
    await _add_user(store, "otto", "operator")
    sessions = SessionStore(store.admin_sessions, 3600)
    opened = [await sessions.open("otto") for _ in range(MAX_SESSIONS_PER_USER + 3)]
    assert await sessions.get(opened[0].token) is None
    assert await sessions.get(opened[-1].token) is not None
    assert await sessions.get(opened[-MAX_SESSIONS_PER_USER].token) is not None


async def test_a_bridge_token_is_shown_once_stored_hashed_and_rotated_or_revoked_on_record(store: Store) -> None:
    tokens = store.bridge_tokens
    assert await tokens.standing("survival") is None
    first = await tokens.issue("survival", by="ada")
    assert len(first) >= 40
    standing = await tokens.standing("survival")
    assert standing is not None and standing.matches(first) and not standing.matches(first + "x")
    assert first not in await _all_text(store, "bridge_tokens")
    status = await tokens.status("survival")
    assert status.set_by == "ada" and status.set_at is not None

    second = await tokens.issue("survival", by="bea")
    assert second != first
    standing = await tokens.standing("survival")
    assert standing is not None and standing.matches(second) and not standing.matches(first)
    assert (await tokens.status("survival")).set_by == "bea"

    assert await tokens.revoke("survival", by="cy") is True
    assert await tokens.standing("survival") is None
    revoked = await tokens.status("survival")
    assert (revoked.set_by, revoked.revoked_by) == (None, "cy") and revoked.revoked_at is not None
    assert await tokens.revoke("survival", by="cy") is False
    rows = await _all_text(store, "bridge_tokens")
    assert "'ada'" in rows and "'bea'" in rows and "'cy'" in rows  # who set and who revoked each, kept
    assert await tokens.standing("creative") is None  # another server's tokens are its own


async def test_mute_is_held_in_the_database_like_pause(store: Store) -> None:
    await store.steering.set_muted("village", "bram", True)
    await store.steering.set_paused("village", "hilde", True)
    assert await store.steering.muted_npcs("village") == {"bram"}
    assert await store.steering.paused_npcs("village") == {"hilde"}
    await store.steering.set_muted("village", "bram", False)
    assert await store.steering.muted_npcs("village") == set()
