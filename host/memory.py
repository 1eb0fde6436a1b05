"""Conversation memory: per (server, NPC, player) a window of recent exchanges and a rolling summary; per NPC the
admin's notes. `MemoryStore` is the seam; `host.store.memory.DbMemoryStore` keeps it in the database (SQLite by
default), so a restart remembers and every process shares it.

When the window overflows, the oldest exchanges are folded into the summary by a `Summarizer` the caller passes (the
brain hands in its LLM); a failing summarizer never loses an exchange, the window just stays long until the next fold
succeeds. Notes are standing: they stay in the NPC's context until removed; past `max_notes` the oldest is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from host.events import AdminNote
from host.store.records import ConversationKey


class RememberedExchange(BaseModel):
    """One player line and the NPC's reply, as the NPC should remember it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    player_text: str
    npc_reply: str
    interrupted: bool = Field(False, description="the player cut the reply short; `npc_reply` is what was said")
    corrected: bool = Field(False, description="an admin replaced the reply with what the NPC should have said")
    turn_id: str | None = None
    ts: float = Field(default_factory=time.time)


class Conversation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    key: ConversationKey
    summary: str = ""
    exchanges: tuple[RememberedExchange, ...] = ()


class NpcNote(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="the AdminNote's event id: a redelivered note is stored once")
    author: str
    text: str
    ts: float

    @classmethod
    def from_event(cls, event: AdminNote) -> NpcNote:
        return cls(id=event.id, author=event.author, text=event.text, ts=event.ts)


class Summarizer(Protocol):
    async def __call__(self, old_summary: str, exchanges: Sequence[RememberedExchange]) -> str:
        """A new summary covering `old_summary` and then `exchanges` (oldest first)."""
        ...


class MemoryStore(Protocol):
    async def conversation(self, key: ConversationKey) -> Conversation: ...

    async def record(
        self, key: ConversationKey, exchange: RememberedExchange, summarize: Summarizer
    ) -> Conversation: ...

    async def correct(self, server: str, npc: str, text: str, *, turn_id: str | None = None) -> Conversation | None:
        """Replace the reply of turn `turn_id` (default: the NPC's latest with anyone); None when there is none."""
        ...

    async def notes(self, server: str, npc: str) -> tuple[NpcNote, ...]: ...

    async def add_note(self, server: str, npc: str, note: NpcNote) -> tuple[NpcNote, ...]: ...

    async def remove_note(self, server: str, npc: str, note_id: str) -> bool: ...
