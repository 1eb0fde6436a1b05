"""Signed-in admin page sessions: the one writer of `admin_sessions`.

The session id is a random 256-bit value that lives only in the user's HttpOnly cookie; the database keeps its
SHA-256 (a plain hash suffices for 256 random bits: there is nothing to guess from it), so sessions survive a restart
of the admin role and hold in every admin process on the same database. A lookup joins the user, so a session
always carries the user's current role, and ends with the user.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from host.store.db import Database
from host.store.errors import NotFoundError
from host.store.models import AdminRole, AdminSession, AdminUser, utc_now

SESSION_BYTES = 32
# Sessions one user may hold at once (browsers, devices); signing in again past it ends their oldest.
MAX_SESSIONS_PER_USER = 20


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class OpenSession(BaseModel):
    model_config = ConfigDict(frozen=True)

    user: str
    role: AdminRole
    expires_at: datetime


class AdminSessionRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def open(self, user: str, lifetime: timedelta) -> tuple[str, OpenSession]:
        """A new session of `user`: its id (for the cookie, nowhere else) and what it grants. Expired sessions of
        everyone are deleted on the way."""
        session_id = secrets.token_urlsafe(SESSION_BYTES)
        now = utc_now()

        async def op(session: AsyncSession) -> OpenSession:
            row = await session.scalar(select(AdminUser).where(AdminUser.name == user))
            if row is None:
                raise NotFoundError(f"no admin user {user!r}")
            await session.execute(delete(AdminSession).where(AdminSession.expires_at <= now))
            kept = await session.scalars(
                select(AdminSession.id_hash)
                .where(AdminSession.user_id == row.id)
                .order_by(AdminSession.created_at.desc())
                .offset(MAX_SESSIONS_PER_USER - 1)
            )
            oldest = list(kept.all())
            if oldest:
                await session.execute(delete(AdminSession).where(AdminSession.id_hash.in_(oldest)))
            session.add(
                AdminSession(
                    id_hash=session_hash(session_id), user_id=row.id, created_at=now, expires_at=now + lifetime
                )
            )
            return OpenSession(user=row.name, role=row.role, expires_at=now + lifetime)

        return session_id, await self._db.run(op)

    async def get(self, session_id: str) -> OpenSession | None:
        """The session this cookie value opens, if it exists and has not expired."""

        async def op(session: AsyncSession) -> OpenSession | None:
            found = (
                await session.execute(
                    select(AdminUser.name, AdminUser.role, AdminSession.expires_at)
                    .join(AdminUser, AdminUser.id == AdminSession.user_id)
                    .where(AdminSession.id_hash == session_hash(session_id), AdminSession.expires_at > utc_now())
                )
            ).one_or_none()
            if found is None:
                return None
            return OpenSession(user=found[0], role=found[1], expires_at=found[2])

        return await self._db.run(op)

    async def close(self, session_id: str) -> None:
        async def op(session: AsyncSession) -> None:
            await session.execute(delete(AdminSession).where(AdminSession.id_hash == session_hash(session_id)))

        await self._db.run(op)
