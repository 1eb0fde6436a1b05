"""Migrations: up from empty on SQLite and PostgreSQL, the result matches the models, and the CLI drives them."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from typer.testing import CliRunner

import host.cli.db_cmd  # noqa: F401  (registers `npc-host db`)
from host.cli import app
from host.store import Database, SchemaOutOfDateError, Store, ensure_schema
from host.store.migrate import current_revision, head_revision, upgrade
from host.store.models import Base

pytest_plugins = ["tests.store_fixtures"]


def _schema_diff(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


async def test_upgrade_from_empty_matches_the_models(database_url: str) -> None:
    db = await Database.open(database_url)
    try:
        assert await current_revision(db) is None
        await upgrade(db)
        await upgrade(db)  # a second run finds nothing to do

        assert await current_revision(db) == head_revision()
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_schema_diff) == []
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert set(Base.metadata.tables) <= tables
    finally:
        await db.close()


async def test_concurrent_upgrades_do_not_collide(database_url: str) -> None:
    databases = [await Database.open(database_url) for _ in range(2)]
    try:
        await asyncio.gather(*(upgrade(db) for db in databases))
        assert [await current_revision(db) for db in databases] == [head_revision()] * 2
    finally:
        for db in databases:
            await db.close()


async def test_sqlite_is_migrated_on_start_postgresql_must_be_upgraded(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        await ensure_schema(database_url)
        store = await Store.open(database_url)
        await store.close()
        return
    with pytest.raises(SchemaOutOfDateError, match=r"schema revision none, .* run `npc-host db upgrade`"):
        await ensure_schema(database_url)
    db = await Database.open(database_url)
    await upgrade(db)
    await db.close()
    await ensure_schema(database_url)


def test_cli_upgrades_and_reports_the_revision(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NPC_HOST_DATABASE_URL", database_url)
    runner = CliRunner()
    head = head_revision()

    before = runner.invoke(app, ["db", "current"])
    upgraded = runner.invoke(app, ["db", "upgrade"])
    after = runner.invoke(app, ["db", "current"])

    assert (before.exit_code, upgraded.exit_code, after.exit_code) == (0, 0, 0)
    assert f"schema revision none, newest {head} (run `npc-host db upgrade`)" in before.output
    assert f"is at schema revision {head}" in upgraded.output
    assert f"schema revision {head}, newest {head} (up to date)" in after.output
