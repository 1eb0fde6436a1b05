"""Database URLs: accept the common spellings, pick the async driver, and describe a target without its password."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from host.store.errors import StoreError

Backend = Literal["sqlite", "postgresql"]

EXPECTED_FORMS = "sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER[:PASSWORD]@HOST[:PORT]/DATABASE"

# Users paste sync URLs from other tools; they name the same database, so we swap in the async driver.
_DRIVERS: dict[str, tuple[Backend, str]] = {
    "sqlite": ("sqlite", "sqlite+aiosqlite"),
    "sqlite+aiosqlite": ("sqlite", "sqlite+aiosqlite"),
    "postgres": ("postgresql", "postgresql+asyncpg"),
    "postgresql": ("postgresql", "postgresql+asyncpg"),
    "postgresql+asyncpg": ("postgresql", "postgresql+asyncpg"),
}

POSTGRES_DEFAULT_PORT = 5432


def parse_database_url(raw: str) -> URL:
    """The async SQLAlchemy URL for `raw`, or a StoreError that never repeats the URL (it may hold a password)."""
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise StoreError(f"database URL is not a valid URL; expected {EXPECTED_FORMS}") from None
    driver = _DRIVERS.get(url.drivername)
    if driver is None:
        raise StoreError(f"unsupported database URL scheme {url.drivername!r}; use {EXPECTED_FORMS}")
    url = url.set(drivername=driver[1])
    if backend_of(url) == "postgresql" and not url.database:
        raise StoreError(f"database URL names no database; expected {EXPECTED_FORMS}")
    return url


def backend_of(url: URL) -> Backend:
    return _DRIVERS[url.drivername][0]


def sqlite_file(url: URL) -> Path | None:
    """The file behind a SQLite URL, or None for an in-memory database."""
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        return None
    return Path(url.database)


def describe(url: URL) -> str:
    """Where a URL points, for messages: host, port and database, never the password."""
    if backend_of(url) == "sqlite":
        path = sqlite_file(url)
        return f"SQLite database {str(path) if path else ':memory:'!r}"
    port = url.port or POSTGRES_DEFAULT_PORT
    return f"database {url.database!r} on {url.host or 'localhost'}:{port}"
