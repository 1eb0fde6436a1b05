"""Schema migrations: upgrade to the newest revision, report the current one, and make sure a database is ready.

SQLite (the embedded default) is upgraded automatically on start; PostgreSQL is shared by several processes, so it is
upgraded on purpose with `npc-host db upgrade` and the host only checks that it is current.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text

from host.store.db import Database
from host.store.errors import SchemaOutOfDateError
from host.store.urls import describe

# Alembic (with Mako and Pygments behind it) is imported by the functions that migrate or read a revision, not with the
# store: a reader such as `npc-host status` never pays its ~150 ms import.
if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection

ALEMBIC_INI = Path(__file__).with_name("alembic.ini")
# Two processes upgrading one PostgreSQL at the same moment take turns on this advisory lock.
_MIGRATION_LOCK_KEY = 0x6E7063686F7374  # "npchost"


def alembic_config() -> Config:
    from alembic.config import Config

    return Config(str(ALEMBIC_INI))


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found next to {ALEMBIC_INI}")
    return head


async def upgrade(db: Database, revision: str = "head") -> None:
    """Migrate to `revision`. Processes upgrading the same database at once take turns: the first migrates, the
    others then find nothing to do."""
    async with db.engine.connect() as conn:
        if db.backend == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        else:
            # Take SQLite's write lock before Alembic reads the current revision, not at its first write.
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        await conn.run_sync(_upgrade_on, revision)
        await conn.commit()


def _upgrade_on(connection: Connection, revision: str) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with db.engine.connect() as conn:
        return await conn.run_sync(lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision())


async def prepare_schema(db: Database) -> None:
    """Upgrade SQLite; for PostgreSQL, fail with a clear message when the schema is not at the newest revision."""
    if db.backend == "sqlite":
        await upgrade(db)
        return
    current, head = await current_revision(db), head_revision()
    if current != head:
        raise SchemaOutOfDateError(
            f"{describe(db.url)} is at schema revision {current or 'none'}, this npc-host needs {head}: "
            "run `npc-host db upgrade`"
        )


async def ensure_schema(url: str) -> None:
    """Open the database at `url`, prepare its schema (see `prepare_schema`) and close it again."""
    db = await Database.open(url)
    try:
        await prepare_schema(db)
    finally:
        await db.close()
