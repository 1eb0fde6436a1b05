"""The advisor's bookkeeping: its cursor in each server's transcript and the record of every pass.

The cursor moves only when a pass finishes well (`finish_pass` with a cursor), in the same transaction that records
the outcome: a pass that fails or crashes midway leaves it where it was, and the next pass reads the same lines.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from host.store import records
from host.store.db import Database
from host.store.keys import insert_ignoring_duplicates, server_id
from host.store.models import AdvisorCursor, AdvisorPass, Server, utc_now

DETAIL_CHARS = 500


class AdvisorRunRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def cursor(self, server: str) -> records.AdvisorCursor | None:
        async def op(session: AsyncSession) -> records.AdvisorCursor | None:
            row = await session.get(AdvisorCursor, await server_id(session, server))
            return None if row is None else records.AdvisorCursor(day=row.day, offset=row.offset)

        return await self._db.run(op)

    async def start_pass(self, server: str, trigger: str) -> int:
        async def op(session: AsyncSession) -> int:
            row = AdvisorPass(server_id=await server_id(session, server), trigger=trigger, outcome="running")
            session.add(row)
            await session.flush()
            return row.id

        return await self._db.run(op)

    async def finish_pass(
        self,
        pass_id: int,
        usage: records.PassUsage,
        *,
        cursor: records.AdvisorCursor | None = None,
        reason: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Record the end of a pass: "ok" without a `reason` (the cursor moves to `cursor`), else "failed"."""

        async def op(session: AsyncSession) -> None:
            row = await session.get(AdvisorPass, pass_id)
            if row is None:
                raise ValueError(f"no advisor pass {pass_id}")
            row.outcome = "failed" if reason else "ok"
            row.reason, row.detail = reason, (detail or "")[:DETAIL_CHARS] or None
            row.lines, row.tokens_in, row.tokens_out = usage.lines, usage.tokens_in, usage.tokens_out
            row.cache_hits, row.recommendations = usage.cache_hits, usage.recommendations
            row.finished_at = utc_now()
            if reason is None and cursor is not None:
                await _move_cursor(session, row.server_id, cursor)

        await self._db.run(op)

    async def recent_passes(self, server: str | None = None, limit: int = 20) -> list[records.AdvisorPassRecord]:
        """The latest passes (of one server, or all), newest first."""

        async def op(session: AsyncSession) -> list[records.AdvisorPassRecord]:
            query = select(AdvisorPass, Server.name).join(Server, Server.id == AdvisorPass.server_id)
            if server is not None:
                query = query.where(Server.name == server)
            query = query.order_by(AdvisorPass.started_at.desc(), AdvisorPass.id.desc()).limit(limit)
            return [_pass(name, row) for row, name in (await session.execute(query)).all()]

        return await self._db.run(op)

    async def failures_by_reason(self, server: str) -> dict[str, int]:
        async def op(session: AsyncSession) -> dict[str, int]:
            query = (
                select(AdvisorPass.reason, func.count())
                .join(Server, Server.id == AdvisorPass.server_id)
                .where(Server.name == server, AdvisorPass.outcome == "failed")
                .group_by(AdvisorPass.reason)
            )
            return {str(reason): int(count) for reason, count in (await session.execute(query)).all()}

        return await self._db.run(op)


async def _move_cursor(session: AsyncSession, server_row: int, cursor: records.AdvisorCursor) -> None:
    values = {"server_id": server_row, "day": cursor.day, "offset": cursor.offset, "updated_at": utc_now()}
    await session.execute(insert_ignoring_duplicates(session, AdvisorCursor, ["server_id"]).values(**values))
    row = await session.get(AdvisorCursor, server_row, populate_existing=True)
    if row is not None:
        row.day, row.offset, row.updated_at = cursor.day, cursor.offset, utc_now()


def _pass(server: str, row: AdvisorPass) -> records.AdvisorPassRecord:
    return records.AdvisorPassRecord(
        id=row.id,
        server=server,
        trigger=row.trigger,
        outcome=row.outcome,
        reason=row.reason,
        detail=row.detail,
        usage=records.PassUsage(
            lines=row.lines,
            tokens_in=row.tokens_in,
            tokens_out=row.tokens_out,
            cache_hits=row.cache_hits,
            recommendations=row.recommendations,
        ),
        started_at=row.started_at,
        finished_at=row.finished_at,
    )
