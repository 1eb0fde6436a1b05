"""Fixtures for the storage tests: the same test runs on a fresh SQLite file and a fresh PostgreSQL database.

Each PostgreSQL test gets its own database (created from the `postgres` maintenance database, dropped after), so
parallel runs on the shared server never see each other's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url

from host.store import Store
from host.store.db import Database
from host.store.migrate import upgrade


@pytest.fixture
def maintenance_dsn(postgres_url: str) -> str:
    """A plain asyncpg DSN for the server's `postgres` database, to create, drop and disturb test databases."""
    return make_url(postgres_url).set(drivername="postgresql", database="postgres").render_as_string(False)


@asynccontextmanager
async def _scratch_postgres_database(postgres_url: str, maintenance_dsn: str) -> AsyncIterator[str]:
    name = f"npc_host_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(maintenance_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield make_url(postgres_url).set(database=name).render_as_string(False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@asynccontextmanager
async def _migrated_store(url: str) -> AsyncIterator[Store]:
    # PostgreSQL is upgraded the way `npc-host db upgrade` does it; Store.open alone only checks its revision.
    db = await Database.open(url)
    await upgrade(db)
    store = Store(db)
    try:
        yield store
    finally:
        await store.close()


@pytest_asyncio.fixture(loop_scope="function", params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: a SQLite file in a directory that does not exist yet, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'npc-host.db'}"
        return
    postgres_url: str = request.getfixturevalue("postgres_url")
    async with _scratch_postgres_database(postgres_url, request.getfixturevalue("maintenance_dsn")) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="function")
async def postgres_database_url(postgres_url: str, maintenance_dsn: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database, for faults only a server has (lost connections)."""
    async with _scratch_postgres_database(postgres_url, maintenance_dsn) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="function")
async def store(database_url: str) -> AsyncIterator[Store]:
    """A store on a migrated, empty database, once on SQLite and once on PostgreSQL."""
    async with _migrated_store(database_url) as opened:
        yield opened


@pytest_asyncio.fixture(loop_scope="function")
async def postgres_store(postgres_database_url: str) -> AsyncIterator[Store]:
    async with _migrated_store(postgres_database_url) as opened:
        yield opened
