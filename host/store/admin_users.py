"""Admin page users: argon2 password hashes, roles admin/operator/viewer. Hashes never leave this module."""

from __future__ import annotations

import asyncio
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from host.store import records
from host.store.db import Database
from host.store.errors import ConflictError
from host.store.models import AdminUser, utc_now

_hasher = PasswordHasher()


@cache
def _decoy_hash() -> str:
    # Checked when the name is unknown, so a wrong name costs as long as a wrong password and reveals nothing.
    return _hasher.hash("decoy password, never matches")


def _matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class AdminUserRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, user: records.NewAdminUser) -> records.AdminUser:
        # Hashing is deliberately slow CPU work: keep it off the event loop and outside the transaction.
        password_hash = await asyncio.to_thread(_hasher.hash, user.password.get_secret_value())

        async def op(session: AsyncSession) -> records.AdminUser:
            row = AdminUser(name=user.name, password_hash=password_hash, role=user.role)
            session.add(row)
            await session.flush()
            return _public(row)

        try:
            return await self._db.run(op)
        except IntegrityError:
            raise ConflictError(f"admin user {user.name!r} already exists") from None

    async def verify(self, name: str, password: SecretStr) -> records.AdminUser | None:
        """The user when `password` is theirs, else None (an unknown name and a wrong password look the same)."""

        async def fetch(session: AsyncSession) -> AdminUser | None:
            return await session.scalar(select(AdminUser).where(AdminUser.name == name))

        row = await self._db.run(fetch)
        # The first decoy is a full argon2 hash: like every hash, it is computed off the event loop.
        stored_hash = row.password_hash if row is not None else await asyncio.to_thread(_decoy_hash)
        if not await asyncio.to_thread(_matches, stored_hash, password.get_secret_value()) or row is None:
            return None
        new_hash = None
        if _hasher.check_needs_rehash(stored_hash):
            new_hash = await asyncio.to_thread(_hasher.hash, password.get_secret_value())
        now = utc_now()

        async def record_login(session: AsyncSession) -> None:
            values = {"last_login_at": now} | ({"password_hash": new_hash} if new_hash else {})
            await session.execute(update(AdminUser).where(AdminUser.id == row.id).values(**values))

        await self._db.run(record_login)
        return _public(row).model_copy(update={"last_login_at": now})

    async def all_users(self) -> list[records.AdminUser]:
        async def op(session: AsyncSession) -> list[records.AdminUser]:
            rows = await session.scalars(select(AdminUser).order_by(AdminUser.name))
            return [_public(row) for row in rows.all()]

        return await self._db.run(op)


def _public(row: AdminUser) -> records.AdminUser:
    return records.AdminUser(
        id=row.id, name=row.name, role=row.role, created_at=row.created_at, last_login_at=row.last_login_at
    )
