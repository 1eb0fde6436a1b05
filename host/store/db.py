"""The database handle: engine and sessions for SQLite or PostgreSQL, a fail-fast connection check, and transactions
that are retried when the connection drops (a PostgreSQL restart, a terminated backend).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from host.store.errors import DatabaseUnavailableError
from host.store.urls import backend_of, describe, parse_database_url, sqlite_file

log = logging.getLogger(__name__)

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 5000
# SQLSTATE classes that mean "this connection is gone, a new one may work": connection exceptions (08) and the
# server shutting down or starting up (57P01-57P03).
_RECONNECTABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")
_AUTH_SQLSTATES = ("28000", "28P01")
_MISSING_DATABASE_SQLSTATE = "3D000"


class Database:
    """One engine per process. Open it with `Database.open(url)`; close it with `await db.close()`."""

    def __init__(
        self, url: URL, engine: AsyncEngine, *, retry_attempts: int, retry_base_delay_s: float, connect_timeout_s: float
    ) -> None:
        self.url = url
        self.engine = engine
        self.backend = backend_of(url)
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._retry_attempts = retry_attempts
        self._retry_base_delay_s = retry_base_delay_s
        self._connect_timeout_s = connect_timeout_s

    @classmethod
    async def open(
        cls,
        raw_url: str,
        *,
        connect_timeout_s: float = 5.0,
        retry_attempts: int = 5,
        retry_base_delay_s: float = 0.2,
    ) -> Database:
        """Connect once to fail fast: a wrong URL raises a one-line StoreError naming host, port and database."""
        if retry_attempts < 1:
            raise ValueError("retry_attempts must be at least 1")
        url = parse_database_url(raw_url)
        db = cls(
            url,
            create_engine(url, connect_timeout_s=connect_timeout_s),
            retry_attempts=retry_attempts,
            retry_base_delay_s=retry_base_delay_s,
            connect_timeout_s=connect_timeout_s,
        )
        try:
            await db.check()
        except BaseException:
            await db.close()
            raise
        return db

    async def check(self) -> None:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # anything at all: driver text may quote the URL, so only our line goes out
            raise DatabaseUnavailableError(
                f"cannot connect to {describe(self.url)}: {explain_failure(exc, self.url, self._connect_timeout_s)}"
            ) from None

    async def run(self, op: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run `op` in one transaction; when the connection drops, run it again on a fresh one.

        `op` must be safe to repeat: the first attempt may have committed before the connection died. The store's
        writes are idempotent by event id for exactly this reason.
        """
        for attempt in range(1, self._retry_attempts + 1):
            try:
                async with self._sessions() as session, session.begin():
                    return await op(session)
            except (DBAPIError, OSError, TimeoutError) as exc:
                if not is_reconnectable(exc):
                    raise
                if attempt == self._retry_attempts:
                    reason = explain_failure(exc, self.url, self._connect_timeout_s)
                    raise DatabaseUnavailableError(
                        f"lost the connection to {describe(self.url)} and could not reconnect "
                        f"after {attempt} attempts: {reason}"
                    ) from None
                delay = self._retry_base_delay_s * 2 ** (attempt - 1)
                log.warning("connection to %s dropped; retrying in %.1f s", describe(self.url), delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    async def close(self) -> None:
        await self.engine.dispose()


def create_engine(url: URL, *, connect_timeout_s: float) -> AsyncEngine:
    if backend_of(url) == "postgresql":
        return create_async_engine(url, pool_pre_ping=True, connect_args={"timeout": connect_timeout_s})
    path = sqlite_file(url)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = (exc.strerror or type(exc).__name__).lower()
            raise DatabaseUnavailableError(f"cannot create the directory of {describe(url)}: {reason}") from None
    engine = create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    event.listen(engine.sync_engine, "connect", _configure_sqlite)
    return engine


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the admin page read while the brain writes; the busy timeout makes a second writer wait, not fail.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception, the driver error SQLAlchemy wrapped, and what caused them."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [getattr(item, "orig", None), item.__cause__, item.__context__]
    return seen


def _sqlstate(exc: BaseException) -> str:
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return state if isinstance(state, str) else ""


def is_reconnectable(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    for cause in _causes(exc):
        if isinstance(cause, ConnectionError | TimeoutError | socket.gaierror):
            return True
        if _sqlstate(cause).startswith(_RECONNECTABLE_SQLSTATES):
            return True
    return False


def explain_failure(exc: BaseException, url: URL, timeout_s: float) -> str:
    """A short reason for a connection failure. Built from types and codes, never from driver text (it may echo
    parts of the URL)."""
    causes = _causes(exc)
    for cause in causes:
        state = _sqlstate(cause)
        if state == _MISSING_DATABASE_SQLSTATE:
            return "the database does not exist"
        if state in _AUTH_SQLSTATES:
            return f"authentication failed for user {url.username or ''!r}"
        if state.startswith("57P0"):
            return "the server is shutting down or starting up"
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return "unknown host"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused (is the server running and listening on that port?)"
        if isinstance(cause, TimeoutError):
            return f"no answer within {timeout_s:g} s"
        if isinstance(cause, sqlite3.OperationalError):
            return "the file cannot be opened (check the path and its permissions)"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror.lower()
    return f"{type(causes[-1]).__name__} from the driver (check the URL's options)"
