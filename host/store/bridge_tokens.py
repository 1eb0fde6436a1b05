"""Per-server voice bridge tokens set on the admin page: the one writer of `bridge_tokens`.

The host generates each token (`issue`), hands it back once for the admin to copy into the plugin's config, and
keeps only a salted hash. Rotating issues a new token and revokes the standing one in the same transaction;
`revoke` leaves the server with none. Every row keeps who set it and when, and who revoked it and when.

    token = await store.bridge_tokens.issue("survival", by="ada")     # shown once, never stored
    stored = await store.bridge_tokens.standing("survival")           # the bridge: salt and digest, or None
    stored.matches(hello_token)                                       # constant-time
    await store.bridge_tokens.revoke("survival", by="ada")
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from host.store.db import Database
from host.store.keys import server_id
from host.store.models import BridgeToken, Server, utc_now

TOKEN_BYTES = 32  # 256 bits of randomness: 43 URL-safe characters, well over any minimum token length
SALT_BYTES = 16


def token_digest(salt: str, token: str) -> str:
    """HMAC-SHA256 of the token keyed by its salt.

    A fast hash is enough here, where a password would need argon2: the token is 256 random bits, not something a
    person chose, so there is no dictionary to try and a brute force of 2^256 is out of reach however fast each try
    is. The salt keeps two servers' digests unrelated. And it must be fast: every plugin hello that is not the
    environment's token is checked against it on the bridge's hot path, where an argon2 hash per connection would let
    a flood of hellos eat the CPU the voices need."""
    return hmac.new(bytes.fromhex(salt), token.encode(), hashlib.sha256).hexdigest()


class StoredToken(BaseModel):
    """What the bridge needs to check a hello: never the token itself."""

    model_config = ConfigDict(frozen=True)

    salt: str
    digest: str

    def matches(self, token: str) -> bool:
        return hmac.compare_digest(token_digest(self.salt, token), self.digest)


class TokenStatus(BaseModel):
    """What the admin page shows of a server's token: who set it and when, never the token or its hash."""

    model_config = ConfigDict(frozen=True)

    server: str
    set_by: str | None
    set_at: datetime | None
    revoked_by: str | None = None  # the last revocation, when no token stands
    revoked_at: datetime | None = None


class BridgeTokenRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def issue(self, server: str, *, by: str) -> str:
        """A new random token for `server`, replacing (revoking) the standing one. The return value is the only copy
        there will ever be."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        salt = secrets.token_hex(SALT_BYTES)
        digest = token_digest(salt, token)

        async def op(session: AsyncSession) -> None:
            server_row = await server_id(session, server)
            await _revoke_standing(session, server_row, by)
            session.add(BridgeToken(server_id=server_row, salt=salt, digest=digest, created_by=by))

        await self._db.run(op)
        return token

    async def revoke(self, server: str, *, by: str) -> bool:
        """Revoke the standing token of `server`; False when it had none."""

        async def op(session: AsyncSession) -> bool:
            return await _revoke_standing(session, await server_id(session, server), by) > 0

        return await self._db.run(op)

    async def standing(self, server: str) -> StoredToken | None:
        """The salt and digest of the server's standing token, for the bridge to check hellos against."""

        async def op(session: AsyncSession) -> StoredToken | None:
            row = await session.scalar(_latest(server).where(BridgeToken.revoked_at.is_(None)))
            return StoredToken(salt=row.salt, digest=row.digest) if row is not None else None

        return await self._db.run(op)

    async def status(self, server: str) -> TokenStatus:
        async def op(session: AsyncSession) -> TokenStatus:
            row = await session.scalar(_latest(server))
            if row is None:
                return TokenStatus(server=server, set_by=None, set_at=None)
            if row.revoked_at is not None:
                return TokenStatus(
                    server=server, set_by=None, set_at=None, revoked_by=row.revoked_by, revoked_at=row.revoked_at
                )
            return TokenStatus(server=server, set_by=row.created_by, set_at=row.created_at)

        return await self._db.run(op)


def _latest(server: str) -> Select[BridgeToken]:
    return (
        select(BridgeToken)
        .join(Server, Server.id == BridgeToken.server_id)
        .where(Server.name == server)
        .order_by(BridgeToken.id.desc())
        .limit(1)
    )


async def _revoke_standing(session: AsyncSession, server_row: int, by: str) -> int:
    result = await session.execute(
        update(BridgeToken)
        .where(BridgeToken.server_id == server_row, BridgeToken.revoked_at.is_(None))
        .values(revoked_at=utc_now(), revoked_by=by)
    )
    return int(getattr(result, "rowcount", 0) or 0)
