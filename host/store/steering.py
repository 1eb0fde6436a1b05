"""How people and the advisor steer an NPC: admin notes, corrections of what it said, advisor recommendations.

Every add is idempotent by the id of the event that carried it, so a redelivered event stores nothing twice.
"""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from host.store import records
from host.store.db import Database
from host.store.errors import NotFoundError
from host.store.keys import find_npc_id, insert_ignoring_duplicates, npc_id
from host.store.models import Correction, Note, Npc, Recommendation, Server, Turn, utc_now

_Row = TypeVar("_Row", Note, Correction, Recommendation)


async def _insert_once(session: AsyncSession, model: type[_Row], values: dict[str, object]) -> _Row:
    """Insert a row keyed by its `event_id`; when that event was stored before, return the earlier row."""
    if values.get("event_id") is None:
        row = model(**values)
        session.add(row)
        await session.flush()
        return row
    insert = insert_ignoring_duplicates(session, model, ["event_id"]).values(**values)
    await session.execute(insert)
    return (await session.scalars(select(model).where(model.event_id == values["event_id"]))).one()


class SteeringRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def set_paused(self, server: str, npc: str, paused: bool) -> None:
        async def op(session: AsyncSession) -> None:
            await session.execute(update(Npc).where(Npc.id == await npc_id(session, server, npc)).values(paused=paused))

        await self._db.run(op)

    async def paused_npcs(self, server: str) -> set[str]:
        """The NPCs of `server` an operator paused."""

        async def op(session: AsyncSession) -> set[str]:
            query = select(Npc.name).join(Server).where(Server.name == server, Npc.paused.is_(True))
            return set((await session.scalars(query)).all())

        return await self._db.run(op)

    async def add_note(self, note: records.NewNote) -> records.Note:
        async def op(session: AsyncSession) -> records.Note:
            values = note.model_dump(include={"author", "text", "event_id"})
            row = await _insert_once(session, Note, {"npc_id": await npc_id(session, note.server, note.npc), **values})
            return _note(note.npc, row)

        return await self._db.run(op)

    async def list_notes(self, server: str, npc: str, *, include_removed: bool = False) -> list[records.Note]:
        """The NPC's notes, oldest first; only the standing ones unless `include_removed`."""

        async def op(session: AsyncSession) -> list[records.Note]:
            npc_row = await find_npc_id(session, server, npc)
            if npc_row is None:
                return []
            query = select(Note).where(Note.npc_id == npc_row).order_by(Note.created_at, Note.id)
            if not include_removed:
                query = query.where(Note.removed_at.is_(None))
            return [_note(npc, row) for row in (await session.scalars(query)).all()]

        return await self._db.run(op)

    async def remove_note(self, server: str, npc: str, note_id: int, *, removed_by: str) -> records.Note:
        """Withdraw a note; it stays on record. Removing it again changes nothing."""

        async def op(session: AsyncSession) -> records.Note:
            npc_row = await find_npc_id(session, server, npc)
            row = await session.get(Note, note_id)
            if row is None or row.npc_id != npc_row:
                raise NotFoundError(f"{npc} on {server} has no note {note_id}")
            if row.removed_at is None:
                row.removed_at, row.removed_by = utc_now(), removed_by
            return _note(npc, row)

        return await self._db.run(op)

    async def add_correction(self, correction: records.NewCorrection) -> records.Correction:
        """Store what the NPC should have said and mark the corrected turn, so memory remembers the correction.

        Without a `turn_id` the NPC's latest turn is corrected (or none, if it never spoke); an unknown `turn_id` is
        a NotFoundError."""

        async def op(session: AsyncSession) -> records.Correction:
            npc_row = await npc_id(session, correction.server, correction.npc)
            turn = await latest_turn(session, npc_row, correction.turn_id)
            if turn is None and correction.turn_id is not None:
                raise NotFoundError(f"{correction.npc} on {correction.server} has no turn {correction.turn_id!r}")
            values = correction.model_dump(include={"author", "text", "event_id"})
            row = await _insert_once(
                session, Correction, {"npc_id": npc_row, "turn_row_id": turn.id if turn else None, **values}
            )
            if turn is not None:
                await session.execute(update(Turn).where(Turn.id == turn.id).values(corrected_reply=row.text))
            return records.Correction(
                id=row.id,
                npc=correction.npc,
                author=row.author,
                text=row.text,
                turn_id=turn.turn_id if turn else None,
                created_at=row.created_at,
            )

        return await self._db.run(op)

    async def add_recommendation(self, recommendation: records.NewRecommendation) -> records.Recommendation:
        async def op(session: AsyncSession) -> records.Recommendation:
            values = recommendation.model_dump(exclude={"server", "npc"})
            npc_row = await npc_id(session, recommendation.server, recommendation.npc)
            row = await _insert_once(session, Recommendation, {"npc_id": npc_row, **values})
            return _recommendation(recommendation.npc, row)

        return await self._db.run(op)

    async def recent_recommendations(self, server: str, npc: str, limit: int = 5) -> list[records.Recommendation]:
        """The advisor's latest recommendations for the NPC, newest first."""

        async def op(session: AsyncSession) -> list[records.Recommendation]:
            npc_row = await find_npc_id(session, server, npc)
            if npc_row is None:
                return []
            rows = await session.scalars(
                select(Recommendation)
                .where(Recommendation.npc_id == npc_row)
                .order_by(Recommendation.created_at.desc(), Recommendation.id.desc())
                .limit(limit)
            )
            return [_recommendation(npc, row) for row in rows.all()]

        return await self._db.run(op)


async def latest_turn(session: AsyncSession, npc_row: int, turn_id: str | None) -> Turn | None:
    """The NPC's turn `turn_id`, or its latest turn with anyone when `turn_id` is None."""
    query = select(Turn).where(Turn.npc_id == npc_row)
    if turn_id is not None:
        query = query.where(Turn.turn_id == turn_id)
    return await session.scalar(query.order_by(Turn.created_at.desc(), Turn.id.desc()).limit(1))


def _note(npc: str, row: Note) -> records.Note:
    return records.Note(
        id=row.id,
        npc=npc,
        author=row.author,
        text=row.text,
        created_at=row.created_at,
        removed_at=row.removed_at,
        removed_by=row.removed_by,
    )


def _recommendation(npc: str, row: Recommendation) -> records.Recommendation:
    return records.Recommendation(
        id=row.id,
        npc=npc,
        steering=row.steering,
        facts=row.facts,
        mood=row.mood,
        warnings=row.warnings,
        created_at=row.created_at,
    )
