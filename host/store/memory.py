"""`DbMemoryStore`: conversation memory (`host.memory.MemoryStore`) kept in the database, shared by every process.

Every exchange is a turn row. A conversation's summary covers its turns up to `summarized_through`; the memory window
is the turns after that mark. Folding calls the summarizer outside any transaction (it is an LLM call) and then moves
the mark only if no other process moved it meanwhile. Turns are never deleted: the admin page still shows them.

Record a turn with `ConversationRepo.record_turn` (source, timings) before `record` sees it: both are keyed by the turn
id, so `record` then only reads. A turn that arrives here first is stored with source "system" and no timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from host.memory import Conversation, NpcNote, RememberedExchange, Summarizer
from host.store.db import Database
from host.store.keys import (
    conversation_ids,
    conversation_key,
    find_conversation_id,
    find_npc_id,
    insert_ignoring_duplicates,
)
from host.store.models import Conversation as ConversationRow
from host.store.models import Note, Turn, utc_now
from host.store.records import ConversationKey, NewCorrection, NewNote
from host.store.steering import SteeringRepo, latest_turn, standing_notes

log = logging.getLogger(__name__)


class DbMemoryStore:
    def __init__(self, db: Database, *, window: int = 8, fold_batch: int = 4, max_notes: int = 10) -> None:
        if window < 1 or fold_batch < 1 or max_notes < 1:
            raise ValueError("window, fold_batch and max_notes must be at least 1")
        self._db = db
        self._window = window
        self._fold_batch = fold_batch
        # A summarizer that keeps failing must not let the window grow without bound.
        self._hard_cap = window * 3
        self._max_notes = max_notes
        self._steering = SteeringRepo(db)
        # One lock per conversation being recorded right now; forgotten when released, as a host meets players
        # without end.
        self._locks: dict[ConversationKey, asyncio.Lock] = {}
        self._lock_users: Counter[ConversationKey] = Counter()

    async def conversation(self, key: ConversationKey) -> Conversation:
        return (await self._db.run(lambda session: _window(session, key))).memory

    async def record(self, key: ConversationKey, exchange: RememberedExchange, summarize: Summarizer) -> Conversation:
        async with self._one_at_a_time(key):
            window = await self._db.run(lambda session: _insert_and_read(session, key, exchange))
            if len(window.memory.exchanges) <= self._window:
                return window.memory
            return await self._fold(window, summarize)

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, key: ConversationKey) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._lock_users[key] += 1
        try:
            async with lock:
                yield
        finally:
            self._lock_users[key] -= 1
            if not self._lock_users[key]:
                del self._lock_users[key], self._locks[key]

    async def correct(self, server: str, npc: str, text: str, *, turn_id: str | None = None) -> Conversation | None:
        """Through the steering store (the one writer of corrections), by "memory"; None when there is no such turn."""
        if await self._find_turn(server, npc, turn_id) is None:
            return None
        correction = NewCorrection(server=server, npc=npc, author="memory", text=text, turn_id=turn_id)
        corrected = await self._steering.add_correction(correction)
        key = await self._find_turn(server, npc, corrected.turn_id)
        return None if key is None else await self.conversation(key)

    async def _find_turn(self, server: str, npc: str, turn_id: str | None) -> ConversationKey | None:
        async def op(session: AsyncSession) -> ConversationKey | None:
            npc_row = await find_npc_id(session, server, npc)
            turn = None if npc_row is None else await latest_turn(session, npc_row, turn_id)
            return None if turn is None else await conversation_key(session, turn.conversation_id)

        return await self._db.run(op)

    async def notes(self, server: str, npc: str) -> tuple[NpcNote, ...]:
        async def op(session: AsyncSession) -> tuple[NpcNote, ...]:
            npc_row = await find_npc_id(session, server, npc)
            return () if npc_row is None else tuple(_npc_note(row) for row in await standing_notes(session, npc_row))

        return await self._db.run(op)

    async def add_note(self, server: str, npc: str, note: NpcNote) -> tuple[NpcNote, ...]:
        """Store a note once (by its event id); past `max_notes` the oldest standing notes are withdrawn."""
        created = datetime.fromtimestamp(note.ts, UTC)
        new = NewNote(server=server, npc=npc, author=note.author, text=note.text, event_id=note.id, created_at=created)
        await self._steering.add_note(new, keep_at_most=self._max_notes)
        return await self.notes(server, npc)

    async def remove_note(self, server: str, npc: str, note_id: str) -> bool:
        return await self._steering.remove_note_of_event(server, npc, note_id, removed_by="memory")

    async def _fold(self, window: _Window, summarize: Summarizer) -> Conversation:
        memory = window.memory
        count = max(len(memory.exchanges) - self._window, self._fold_batch)
        summary = memory.summary
        try:
            summary = (await summarize(memory.summary, memory.exchanges[:count])).strip()
        except Exception:
            log.exception("summarizing %s failed; keeping the exchanges for the next try", memory.key)
            if len(memory.exchanges) <= self._hard_cap:
                return memory
            count = len(memory.exchanges) - self._hard_cap
            log.warning("%s: leaving %d exchanges out of memory unsummarized", memory.key, count)
        mark = window.turn_rows[count - 1]

        async def op(session: AsyncSession) -> Conversation:
            # Only if nobody folded since we read: another process's summary already covers these turns.
            await session.execute(
                update(ConversationRow)
                .where(
                    ConversationRow.id == window.conversation_row,
                    ConversationRow.summarized_through.is_not_distinct_from(window.summarized_through),
                )
                .values(summary=summary, summary_updated_at=utc_now(), summarized_through=mark)
            )
            return (await _window(session, memory.key)).memory

        return await self._db.run(op)


async def _insert_and_read(session: AsyncSession, key: ConversationKey, exchange: RememberedExchange) -> _Window:
    conversation, npc = await conversation_ids(session, key)
    turn_id = exchange.turn_id or uuid.uuid4().hex
    await session.execute(
        insert_ignoring_duplicates(session, Turn).values(
            conversation_id=conversation,
            npc_id=npc,
            cause_id=f"memory:{turn_id}",
            turn_id=turn_id,
            source="system",
            player_text=exchange.player_text,
            npc_reply=exchange.npc_reply,
            interrupted=exchange.interrupted,
            corrected_reply=exchange.npc_reply if exchange.corrected else None,
            created_at=datetime.fromtimestamp(exchange.ts, UTC),
        )
    )
    return await _window(session, key)


@dataclass(frozen=True)
class _Window:
    memory: Conversation
    conversation_row: int | None = None
    summarized_through: int | None = None
    turn_rows: list[int] = field(default_factory=list)


async def _window(session: AsyncSession, key: ConversationKey) -> _Window:
    """The conversation as memory sees it, with the row ids needed to fold it."""
    row = await session.scalar(
        select(ConversationRow).where(ConversationRow.id == await find_conversation_id(session, key))
    )
    if row is None:
        return _Window(Conversation(key=key))
    query = select(Turn).where(Turn.conversation_id == row.id).order_by(Turn.id)
    if row.summarized_through is not None:
        query = query.where(Turn.id > row.summarized_through)
    turns = (await session.scalars(query)).all()
    exchanges = tuple(
        RememberedExchange(
            player_text=turn.player_text,
            npc_reply=turn.corrected_reply if turn.corrected_reply is not None else turn.npc_reply,
            interrupted=turn.interrupted,
            corrected=turn.corrected_reply is not None,
            turn_id=turn.turn_id,
            ts=turn.created_at.timestamp(),
        )
        for turn in turns
    )
    memory = Conversation(key=key, summary=row.summary or "", exchanges=exchanges)
    return _Window(memory, row.id, row.summarized_through, [turn.id for turn in turns])


def _npc_note(row: Note) -> NpcNote:
    return NpcNote(id=row.event_id or str(row.id), author=row.author, text=row.text, ts=row.created_at.timestamp())
