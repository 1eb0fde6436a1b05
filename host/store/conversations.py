"""Conversations: recording turns (idempotently), the recent exchanges, rolling summaries, turn counts."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from host.store.db import Database
from host.store.keys import conversation_ids, find_conversation_id, insert_ignoring_duplicates
from host.store.models import Conversation, Npc, Player, Server, Turn, utc_now
from host.store.records import ConversationKey, Exchange, TurnRecord


class ConversationRepo:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record_turn(self, turn: TurnRecord) -> bool:
        """Store a finished turn. True when it was new; False when a turn with its `cause_id` or `turn_id` already
        exists (the event was delivered again), in which case nothing changes."""

        async def op(session: AsyncSession) -> bool:
            conversation, npc = await conversation_ids(session, turn.key)
            insert = insert_ignoring_duplicates(session, Turn)
            row = insert.values(
                conversation_id=conversation,
                npc_id=npc,
                **turn.model_dump(exclude={"server", "npc", "player"}),
            ).returning(Turn.id)
            if await session.scalar(row) is None:
                return False
            await session.execute(
                update(Conversation)
                .where(Conversation.id == conversation, Conversation.last_active_at < turn.created_at)
                .values(last_active_at=turn.created_at)
            )
            return True

        return await self._db.run(op)

    async def recent_exchanges(self, key: ConversationKey, limit: int = 10) -> list[Exchange]:
        """The last `limit` exchanges of the conversation, oldest first (the order a prompt lists them in)."""
        if limit < 1:
            return []

        async def op(session: AsyncSession) -> list[Exchange]:
            conversation = await find_conversation_id(session, key)
            if conversation is None:
                return []
            rows = await session.scalars(
                select(Turn)
                .where(Turn.conversation_id == conversation)
                .order_by(Turn.created_at.desc(), Turn.id.desc())
                .limit(limit)
            )
            return [_exchange(key.player, turn) for turn in reversed(rows.all())]

        return await self._db.run(op)

    async def set_summary(self, key: ConversationKey, summary: str) -> None:
        async def op(session: AsyncSession) -> None:
            conversation, _ = await conversation_ids(session, key)
            await session.execute(
                update(Conversation)
                .where(Conversation.id == conversation)
                .values(summary=summary, summary_updated_at=utc_now())
            )

        await self._db.run(op)

    async def get_summary(self, key: ConversationKey) -> str | None:
        async def op(session: AsyncSession) -> str | None:
            conversation = await find_conversation_id(session, key)
            if conversation is None:
                return None
            return await session.scalar(select(Conversation.summary).where(Conversation.id == conversation))

        return await self._db.run(op)

    async def cut_turn(self, turn_id: str, heard: str) -> bool:
        """Keep only what the players heard of turn `turn_id` (playback was cut) and mark it interrupted. False when
        no such turn is recorded (yet)."""

        async def op(session: AsyncSession) -> bool:
            result = await session.execute(
                update(Turn).where(Turn.turn_id == turn_id).values(npc_reply=heard, interrupted=True)
            )
            return bool(getattr(result, "rowcount", 0))

        return await self._db.run(op)

    async def turn_by_cause(self, cause_id: str) -> Exchange | None:
        """The turn caused by event `cause_id`, if one was recorded (how a redelivered event is recognised)."""

        async def op(session: AsyncSession) -> Exchange | None:
            row = (
                await session.execute(
                    select(Turn, Player.name)
                    .join(Conversation, Turn.conversation_id == Conversation.id)
                    .join(Player, Conversation.player_id == Player.id)
                    .where(Turn.cause_id == cause_id)
                )
            ).first()
            return None if row is None else _exchange(row[1], row[0])

        return await self._db.run(op)

    async def turn_counts(self, server: str) -> dict[str, int]:
        """Recorded turns per NPC on `server`, including NPCs that have none yet."""

        async def op(session: AsyncSession) -> dict[str, int]:
            rows = await session.execute(
                select(Npc.name, func.count(Turn.id))
                .join(Server, Npc.server_id == Server.id)
                .outerjoin(Turn, Turn.npc_id == Npc.id)
                .where(Server.name == server)
                .group_by(Npc.name)
            )
            return {name: count for name, count in rows.all()}

        return await self._db.run(op)


def _exchange(player: str, turn: Turn) -> Exchange:
    return Exchange(
        player=player,
        source=turn.source,
        player_text=turn.player_text,
        npc_reply=turn.npc_reply,
        corrected_reply=turn.corrected_reply,
        interrupted=turn.interrupted,
        emotion=turn.emotion,
        timings_ms=turn.timings_ms,
        cause_id=turn.cause_id,
        turn_id=turn.turn_id,
        created_at=turn.created_at,
    )
