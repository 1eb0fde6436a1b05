"""The bridge token an admin set for a server on the admin page, as the gateway's bridge checks plugin hellos.

The admin page may run in another process than the gateway, so the gateway reads the token's salted hash from the
store (host/store/bridge_tokens.py) rather than being told. A hello the last read accepts is let in for `FRESH_S`
after that read: a reconnecting crowd of plugins costs one query. A hello it does not accept always reads again, so a
token set a moment ago works at once; a rotated or revoked token stops working within `FRESH_S`. Concurrent reads
share one query, and the bridge's door bans an address after a few wrong tokens, so guessing cannot flood the
database.
"""

from __future__ import annotations

import asyncio
import logging
import time

from host.log_window import LogWindow
from host.store import StoredToken, StoreError
from host.store.bridge_tokens import BridgeTokenRepo

log = logging.getLogger(__name__)

FRESH_S = 1.0


class StoredTokenCheck:
    """`await check(token)`: whether `token` is the standing admin-set token of `server`."""

    def __init__(self, tokens: BridgeTokenRepo, server: str, *, fresh_s: float = FRESH_S) -> None:
        self._tokens = tokens
        self._server = server
        self._fresh_s = fresh_s
        self._stored: StoredToken | None = None
        self._read_at = float("-inf")
        self._reading: asyncio.Task[StoredToken | None] | None = None
        self._failures = LogWindow()

    async def __call__(self, token: str) -> bool:
        stored = self._stored
        if stored is not None and time.monotonic() - self._read_at < self._fresh_s and stored.matches(token):
            return True
        stored = await self.read()
        return stored is not None and stored.matches(token)

    async def read(self) -> StoredToken | None:
        """The server's standing token as the store has it now (joining a read already on its way)."""
        if self._reading is None:
            self._reading = asyncio.create_task(self._fetch(), name=f"bridge-token:{self._server}")
            self._reading.add_done_callback(self._read_done)
        return await asyncio.shield(self._reading)

    def _read_done(self, _: asyncio.Task[StoredToken | None]) -> None:
        self._reading = None

    async def _fetch(self) -> StoredToken | None:
        try:
            self._stored = await self._tokens.standing(self._server)
        except Exception as exc:  # a driver's OSError as much as SQLAlchemy's own: none may end the role
            # The database is away or broken: the last token read keeps working (the configured token is unaffected).
            # Only our own message or the error's type is logged: driver text may quote the database URL.
            reason = exc.message if isinstance(exc, StoreError) else type(exc).__name__
            if self._failures.due() is not None:
                log.warning("server '%s': cannot read its bridge token from the store: %s", self._server, reason)
            return self._stored
        self._read_at = time.monotonic()
        return self._stored
