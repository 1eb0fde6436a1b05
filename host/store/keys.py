"""Find or create the rows that names refer to (server, NPC, player, conversation), safely under concurrency.

Creation uses INSERT ... ON CONFLICT DO NOTHING, so two processes meeting a new player at once both end up with the
same row instead of one of them failing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from host.store.models import Base, Conversation, Npc, Player, Server
from host.store.records import ConversationKey


def insert_ignoring_duplicates(
    session: AsyncSession, model: type[Base], conflict_on: list[str] | None = None
) -> Insert:
    """An INSERT that does nothing when a row with the same `conflict_on` columns (default: any unique key) exists."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model).on_conflict_do_nothing(index_elements=conflict_on)
    return sqlite.insert(model).on_conflict_do_nothing(index_elements=conflict_on)


async def _find_or_create(
    session: AsyncSession, model: type[Server | Npc | Player | Conversation], values: dict[str, Any], unique: list[str]
) -> int:
    query = select(model.id).filter_by(**values)
    found = await session.scalar(query)
    if found is not None:
        return found
    await session.execute(insert_ignoring_duplicates(session, model, unique).values(**values))
    return (await session.execute(query)).scalar_one()


async def server_id(session: AsyncSession, server: str) -> int:
    return await _find_or_create(session, Server, {"name": server}, ["name"])


async def npc_id(session: AsyncSession, server: str, npc: str) -> int:
    return await _named_in_server(session, Npc, await server_id(session, server), npc)


async def _named_in_server(session: AsyncSession, model: type[Npc | Player], server: int, name: str) -> int:
    return await _find_or_create(session, model, {"server_id": server, "name": name}, ["server_id", "name"])


async def conversation_ids(session: AsyncSession, key: ConversationKey) -> tuple[int, int]:
    """(conversation id, NPC id) for `key`, creating whatever is missing."""
    server = await server_id(session, key.server)
    npc = await _named_in_server(session, Npc, server, key.npc)
    player = await _named_in_server(session, Player, server, key.player)
    values = {"server_id": server, "npc_id": npc, "player_id": player}
    return await _find_or_create(session, Conversation, values, ["npc_id", "player_id"]), npc


async def find_npc_id(session: AsyncSession, server: str, npc: str) -> int | None:
    """The NPC's id, or None when nothing was ever stored for it (reads never create rows)."""
    query = select(Npc.id).join(Server).where(Server.name == server, Npc.name == npc)
    return await session.scalar(query)


async def find_conversation_id(session: AsyncSession, key: ConversationKey) -> int | None:
    query = (
        select(Conversation.id)
        .join(Server, Conversation.server_id == Server.id)
        .join(Npc, Conversation.npc_id == Npc.id)
        .join(Player, Conversation.player_id == Player.id)
        .where(Server.name == key.server, Npc.name == key.npc, Player.name == key.player)
    )
    return await session.scalar(query)


async def conversation_key(session: AsyncSession, conversation: int) -> ConversationKey:
    server, npc, player = (
        await session.execute(
            select(Server.name, Npc.name, Player.name)
            .select_from(Conversation)
            .join(Server, Conversation.server_id == Server.id)
            .join(Npc, Conversation.npc_id == Npc.id)
            .join(Player, Conversation.player_id == Player.id)
            .where(Conversation.id == conversation)
        )
    ).one()
    return ConversationKey(server=server, npc=npc, player=player)
