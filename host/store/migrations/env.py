"""Alembic environment. npc-host hands over an open connection (host/store/migrate.py); run by hand
(`alembic -c host/store/alembic.ini ...`), it connects to the configured NPC_HOST_DATABASE_URL.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from host.config import load_settings
from host.store.db import create_engine
from host.store.models import Base
from host.store.urls import parse_database_url


def _configure(connection: Connection) -> None:
    # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_on_configured_database() -> None:
    url = parse_database_url(load_settings().effective_database_url)
    engine = create_engine(url, connect_timeout_s=10.0)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_configure)
    finally:
        await engine.dispose()


def _run_offline() -> None:
    url = parse_database_url(load_settings().effective_database_url)
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
elif (shared := context.config.attributes.get("connection")) is not None:
    _configure(shared)
else:
    asyncio.run(_run_on_configured_database())
