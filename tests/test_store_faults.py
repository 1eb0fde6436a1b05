"""Faults: wrong database URLs fail fast with one line and no password; dropped PostgreSQL connections are retried."""

from __future__ import annotations

import asyncio
import traceback
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from host.store import ConversationKey, Database, DatabaseUnavailableError, Store, StoreError, TurnRecord
from host.store.models import Turn

pytest_plugins = ["tests.store_fixtures"]

PASSWORD = "s3cret-Pa55"
KEY = ConversationKey(server="s", npc="Greta", player="Steve")
FORMS = "sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER[:PASSWORD]@HOST[:PORT]/DATABASE"


def _turn(cause: str) -> TurnRecord:
    return TurnRecord(
        server="s", npc="Greta", player="Steve", cause_id=cause, source="chat", player_text="hi", npc_reply="hello"
    )


async def _turn_count(store: Store) -> int:
    async with store.db.engine.connect() as conn:
        return (await conn.execute(select(func.count(Turn.id)))).scalar_one()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"mysql://root:{PASSWORD}@127.0.0.1/npc", f"unsupported database URL scheme 'mysql'; use {FORMS}"),
        (f"postgresql://root:{PASSWORD}@127.0.0.1", f"database URL names no database; expected {FORMS}"),
        (f"postgresql://root:{PASSWORD}@@:x", f"database URL is not a valid URL; expected {FORMS}"),
        (
            f"postgresql+asyncpg://postgres:{PASSWORD}@127.0.0.1:1/test",
            "cannot connect to database 'test' on 127.0.0.1:1: "
            "connection refused (is the server running and listening on that port?)",
        ),
        (
            f"postgresql+asyncpg://postgres:{PASSWORD}@db.example.invalid:5432/test",
            "cannot connect to database 'test' on db.example.invalid:5432: unknown host",
        ),
        (
            "sqlite:////proc/npc-host-cannot-be-here/npc.db",
            "cannot create the directory of SQLite database '/proc/npc-host-cannot-be-here/npc.db': "
            "no such file or directory",
        ),
    ],
)
async def test_wrong_url_fails_fast_with_one_clear_line(url: str, message: str) -> None:
    with pytest.raises(StoreError) as caught:
        await Database.open(url)

    assert str(caught.value) == message
    assert PASSWORD not in "".join(traceback.format_exception(caught.value))


async def test_a_server_that_never_answers_is_reported_after_the_connect_timeout() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def hold_silently(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # accept the TCP connection, never speak PostgreSQL

    server = await asyncio.start_server(hold_silently, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            await Database.open(f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/test", connect_timeout_s=0.5)
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()

    assert str(caught.value) == f"cannot connect to database 'test' on 127.0.0.1:{port}: no answer within 0.5 s"
    assert accepted


async def test_missing_postgresql_database_is_named(postgres_url: str) -> None:
    url = postgres_url.replace("postgres@", f"postgres:{PASSWORD}@").rsplit("/", 1)[0] + "/npc_host_no_such_db"

    with pytest.raises(DatabaseUnavailableError) as caught:
        await Database.open(url)

    assert str(caught.value) == (
        "cannot connect to database 'npc_host_no_such_db' on 127.0.0.1:5432: the database does not exist"
    )


async def test_sqlite_uses_wal_and_a_busy_timeout_in_a_created_directory(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "data" / "npc-host.db"
    store = await Store.open(f"sqlite:///{path}")
    try:
        async with store.db.engine.connect() as conn:
            journal = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
            busy_ms = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar_one()
        assert (journal, busy_ms) == ("wal", 5000)
        assert path.is_file()
        assert await store.conversations.record_turn(_turn("evt-1"))
    finally:
        await store.close()


async def test_next_write_after_the_backend_was_terminated_succeeds(
    postgres_store: Store, maintenance_dsn: str
) -> None:
    assert await postgres_store.conversations.record_turn(_turn("evt-1"))
    database = postgres_store.db.url.database
    admin = await asyncpg.connect(maintenance_dsn)
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1", database
        )
    finally:
        await admin.close()
    assert killed >= 1  # the pooled connection was really cut

    assert await postgres_store.conversations.record_turn(_turn("evt-2"))
    assert await _turn_count(postgres_store) == 2
    assert len(await postgres_store.conversations.recent_exchanges(KEY)) == 2


async def test_a_transaction_cut_midway_is_run_again(postgres_store: Store) -> None:
    await postgres_store.conversations.record_turn(_turn("evt-1"))
    attempts: list[int] = []

    async def rewrite_reply(session: AsyncSession) -> int:
        attempts.append(len(attempts) + 1)
        await session.execute(text("UPDATE turns SET npc_reply = 'rewritten' WHERE cause_id = 'evt-1'"))
        if len(attempts) == 1:
            # The server drops this connection mid-transaction, as a restart or failover would.
            await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return len(attempts)

    assert await postgres_store.db.run(rewrite_reply) == 2
    [after] = await postgres_store.conversations.recent_exchanges(KEY)
    assert after.npc_reply == "rewritten"


async def test_a_connection_that_keeps_dropping_gives_up_with_a_clear_line(postgres_database_url: str) -> None:
    db = await Database.open(postgres_database_url, retry_attempts=2, retry_base_delay_s=0.01)
    attempts: list[int] = []

    async def always_cut(session: AsyncSession) -> None:
        attempts.append(1)
        await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))

    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            await db.run(always_cut)
    finally:
        await db.close()

    assert len(attempts) == 2
    assert str(caught.value) == (
        f"lost the connection to database {db.url.database!r} on 127.0.0.1:5432 and could not reconnect after "
        "2 attempts: the server is shutting down or starting up"
    )


async def test_errors_that_are_not_disconnects_are_not_retried(store: Store) -> None:
    attempts: list[int] = []

    async def broken(session: AsyncSession) -> None:
        attempts.append(1)
        await session.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(DBAPIError):
        await store.db.run(broken)
    assert len(attempts) == 1
