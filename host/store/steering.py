"""How people and the advisor steer an NPC: admin notes, corrections of what it said, advisor recommendations.

This module is the one writer of those records: the brain (through conversation memory), the advisor, the CLI and
the admin page all call these methods. Every add is idempotent by the id of the event that carried it, so a
redelivered event stores nothing twice.

Recommendations (the admin page shows and decides them through these calls):

    await store.steering.list_recommendations("village", status="pending")   # newest first
    await store.steering.decide_recommendation(12, accept=True, by="kim")    # pending -> active (or rejected)
    await store.steering.active_advice("village", "bram")                    # what the NPC's next turn gets
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from host.store import records
from host.store.db import Database
from host.store.errors import ConflictError, NotFoundError
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
        return await self._flagged(server, Npc.paused)

    async def set_muted(self, server: str, npc: str, muted: bool) -> None:
        async def op(session: AsyncSession) -> None:
            await session.execute(update(Npc).where(Npc.id == await npc_id(session, server, npc)).values(muted=muted))

        await self._db.run(op)

    async def muted_npcs(self, server: str) -> set[str]:
        """The NPCs of `server` an operator muted."""
        return await self._flagged(server, Npc.muted)

    async def _flagged(self, server: str, flag: InstrumentedAttribute[bool]) -> set[str]:
        async def op(session: AsyncSession) -> set[str]:
            query = select(Npc.name).join(Server).where(Server.name == server, flag.is_(True))
            return set((await session.scalars(query)).all())

        return await self._db.run(op)

    async def add_note(self, note: records.NewNote, *, keep_at_most: int | None = None) -> records.Note:
        """Store a note once (by its event id). With `keep_at_most`, the oldest standing notes beyond that many are
        withdrawn (by "memory"), so an NPC's context never fills with notes."""

        async def op(session: AsyncSession) -> records.Note:
            values = note.model_dump(include={"author", "text", "event_id"})
            if note.created_at is not None:
                values["created_at"] = note.created_at
            npc_row = await npc_id(session, note.server, note.npc)
            row = await _insert_once(session, Note, {"npc_id": npc_row, **values})
            if keep_at_most is not None:
                standing = await standing_notes(session, npc_row)
                for old in standing[:-keep_at_most] if len(standing) > keep_at_most else []:
                    _withdraw(old, "memory")
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
            _withdraw(row, removed_by)
            return _note(npc, row)

        return await self._db.run(op)

    async def remove_note_of_event(self, server: str, npc: str, event_id: str, *, removed_by: str) -> bool:
        """Withdraw the standing note that event `event_id` carried; False when there is none."""

        async def op(session: AsyncSession) -> bool:
            npc_row = await find_npc_id(session, server, npc)
            row = await session.scalar(select(Note).where(Note.npc_id == npc_row, Note.event_id == event_id))
            if row is None or row.removed_at is not None:
                return False
            _withdraw(row, removed_by)
            return True

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
        """Store an advisor recommendation once (by event id). An "active" one applies at once; a "pending" one
        waits for `decide_recommendation`."""

        async def op(session: AsyncSession) -> records.Recommendation:
            values = recommendation.model_dump(mode="json", exclude={"server", "npc", "items"})
            values["items"] = [item.model_dump(mode="json") for item in recommendation.items]
            values["priority"] = max((item.priority for item in recommendation.items), default=0)
            if recommendation.status == "active":
                values["expires_at"] = _expiry(recommendation.items, utc_now())
            npc_row = await npc_id(session, recommendation.server, recommendation.npc)
            row = await _insert_once(session, Recommendation, {"npc_id": npc_row, **values})
            return _recommendation(recommendation.server, recommendation.npc, row)

        return await self._db.run(op)

    async def decide_recommendation(self, recommendation_id: int, *, accept: bool, by: str) -> records.Recommendation:
        """An operator's decision on a pending recommendation: accepted ones apply from now (their lifetimes start
        now), rejected ones never do. Deciding one that is no longer pending is a ConflictError."""

        async def op(session: AsyncSession) -> records.Recommendation:
            row = await session.get(Recommendation, recommendation_id)
            if row is None:
                raise NotFoundError(f"no recommendation {recommendation_id}")
            if row.status != "pending":
                raise ConflictError(f"recommendation {recommendation_id} is already {row.status}")
            now = utc_now()
            row.status, row.decided_by, row.decided_at = ("active" if accept else "rejected"), by, now
            if accept:
                row.expires_at = _expiry([records.AdviceItem.model_validate(item) for item in row.items], now)
            server, npc = await _names_of(session, row.npc_id)
            return _recommendation(server, npc, row)

        return await self._db.run(op)

    async def list_recommendations(
        self,
        server: str,
        *,
        npc: str | None = None,
        status: records.RecommendationStatus | None = None,
        limit: int = 50,
    ) -> list[records.Recommendation]:
        """A server's recommendations, newest first, optionally of one NPC and one status."""

        async def op(session: AsyncSession) -> list[records.Recommendation]:
            query = (
                select(Recommendation, Npc.name)
                .join(Npc, Npc.id == Recommendation.npc_id)
                .join(Server, Server.id == Npc.server_id)
                .where(Server.name == server)
            )
            if npc is not None:
                query = query.where(Npc.name == npc)
            if status is not None:
                query = query.where(Recommendation.status == status)
            query = query.order_by(Recommendation.created_at.desc(), Recommendation.id.desc()).limit(limit)
            return [_recommendation(server, name, row) for row, name in (await session.execute(query)).all()]

        return await self._db.run(op)

    async def recent_recommendations(self, server: str, npc: str, limit: int = 5) -> list[records.Recommendation]:
        """The advisor's latest recommendations for the NPC, newest first."""
        return await self.list_recommendations(server, npc=npc, limit=limit)

    async def active_advice(
        self, server: str, npc: str, *, now: datetime | None = None, limit: int = 50
    ) -> list[records.ActiveAdvice]:
        """The items that apply to the NPC's next turn: of active recommendations, not expired; highest priority
        first, newest first on equal priority."""
        now = now or utc_now()

        async def op(session: AsyncSession) -> list[records.ActiveAdvice]:
            npc_row = await find_npc_id(session, server, npc)
            if npc_row is None:
                return []
            rows = await session.scalars(
                select(Recommendation)
                .where(
                    Recommendation.npc_id == npc_row,
                    Recommendation.status == "active",
                    Recommendation.expires_at > now,
                )
                .order_by(Recommendation.created_at.desc(), Recommendation.id.desc())
                .limit(limit)
            )
            advice = [
                records.ActiveAdvice(
                    recommendation_id=row.id,
                    kind=item.kind,
                    text=item.text,
                    priority=item.priority,
                    expires_at=expires,
                    warning=item.warning,
                )
                for row in rows.all()
                for item in (records.AdviceItem.model_validate(raw) for raw in row.items)
                if (expires := _item_expiry(row, item)) > now
            ]
            # Stable sort: newest first within a priority, as the rows came.
            return sorted(advice, key=lambda item: -item.priority)

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


def _recommendation(server: str, npc: str, row: Recommendation) -> records.Recommendation:
    return records.Recommendation(
        id=row.id,
        server=server,
        npc=npc,
        steering=row.steering,
        facts=row.facts,
        mood=row.mood,
        warnings=row.warnings,
        items=[records.AdviceItem.model_validate(item) for item in row.items],
        status=row.status,
        priority=row.priority,
        expires_at=row.expires_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        pass_id=row.pass_id,
        created_at=row.created_at,
    )


def _expiry(items: list[records.AdviceItem], active_from: datetime) -> datetime:
    return active_from + timedelta(minutes=max((item.lifetime_minutes for item in items), default=0))


def _item_expiry(row: Recommendation, item: records.AdviceItem) -> datetime:
    active_from = row.decided_at if row.decided_at is not None else row.created_at
    return active_from + timedelta(minutes=item.lifetime_minutes)


def _withdraw(row: Note, by: str) -> None:
    if row.removed_at is None:
        row.removed_at, row.removed_by = utc_now(), by


async def standing_notes(session: AsyncSession, npc_row: int) -> list[Note]:
    """The NPC's notes not withdrawn, oldest first."""
    query = select(Note).where(Note.npc_id == npc_row, Note.removed_at.is_(None)).order_by(Note.id)
    return list((await session.scalars(query)).all())


async def _names_of(session: AsyncSession, npc_row: int) -> tuple[str, str]:
    found = (await session.execute(select(Server.name, Npc.name).join(Npc).where(Npc.id == npc_row))).one()
    return found[0], found[1]
