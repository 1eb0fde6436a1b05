"""Conversation memory: per (server, NPC, player) a window of recent exchanges and a rolling summary; per NPC the
admin's notes. `MemoryStore` is the seam; `FileMemoryStore` keeps it as JSON under `settings.data_dir / "memory"`.

When the window overflows, the oldest exchanges are folded into the summary by a `Summarizer` the caller passes (the
brain hands in its LLM); a failing summarizer never loses an exchange, the window just stays long until the next fold
succeeds. Notes are standing: they stay in the NPC's context until removed; past `max_notes` the oldest is dropped.

Layout: `<root>/<server>/<npc>/notes.json` and `<root>/<server>/<npc>/players/<player>.json`. One process owns these
files (the brain); the storage issue moves memory into the database behind the same Protocol.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import quote, unquote

from pydantic import BaseModel, ConfigDict, Field

from host.atomic_json import read_model, write_model
from host.config import Settings
from host.events import AdminNote
from host.store.records import ConversationKey

log = logging.getLogger(__name__)


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


class _NotesFile(BaseModel):
    version: Literal[1] = 1
    notes: tuple[NpcNote, ...] = ()


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


def _file_stem(name: str) -> str:
    """A file name for any player name: percent-encoded, and never `.`-led (no `..`, no hidden files)."""
    stem = quote(name, safe="")
    return "%2E" + stem[1:] if stem.startswith(".") else stem


class FileMemoryStore:
    def __init__(self, root: Path, *, window: int = 8, fold_batch: int = 4, max_notes: int = 10) -> None:
        if window < 1 or fold_batch < 1 or max_notes < 1:
            raise ValueError("window, fold_batch and max_notes must be at least 1")
        self._root = root
        self._window = window
        self._fold_batch = fold_batch
        # A summarizer that keeps failing must not let a conversation grow without bound.
        self._hard_cap = window * 3
        self._max_notes = max_notes
        self._conversations: dict[ConversationKey, Conversation] = {}
        self._notes: dict[tuple[str, str], tuple[NpcNote, ...]] = {}
        self._locks: dict[object, asyncio.Lock] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> FileMemoryStore:
        return cls(settings.data_dir / "memory")

    async def conversation(self, key: ConversationKey) -> Conversation:
        async with self._lock(key):
            return await self._load(key)

    async def record(self, key: ConversationKey, exchange: RememberedExchange, summarize: Summarizer) -> Conversation:
        async with self._lock(key):
            current = await self._load(key)
            current = await self._save(current.model_copy(update={"exchanges": (*current.exchanges, exchange)}))
            if len(current.exchanges) <= self._window:
                return current
            return await self._save(await self._fold(current, summarize))

    async def correct(self, server: str, npc: str, text: str, *, turn_id: str | None = None) -> Conversation | None:
        for key in await self._keys_of(server, npc):
            await self.conversation(key)
        candidates = [c for k, c in self._conversations.items() if (k.server, k.npc) == (server, npc) and c.exchanges]
        if turn_id is None:
            latest = max(candidates, key=lambda c: c.exchanges[-1].ts, default=None)
            return None if latest is None else await self._replace_reply(latest.key, latest.exchanges[-1], text)
        for conversation in candidates:
            for exchange in conversation.exchanges:
                if exchange.turn_id == turn_id:
                    return await self._replace_reply(conversation.key, exchange, text)
        return None

    async def notes(self, server: str, npc: str) -> tuple[NpcNote, ...]:
        async with self._lock((server, npc)):
            return await self._load_notes(server, npc)

    async def add_note(self, server: str, npc: str, note: NpcNote) -> tuple[NpcNote, ...]:
        async with self._lock((server, npc)):
            notes = await self._load_notes(server, npc)
            if any(existing.id == note.id for existing in notes):
                return notes
            notes = (*notes, note)
            if len(notes) > self._max_notes:
                dropped, notes = notes[: -self._max_notes], notes[-self._max_notes :]
                log.info("%s/%s has more than %d notes; dropped the oldest: %s", server, npc, self._max_notes, dropped)
            return await self._save_notes(server, npc, notes)

    async def remove_note(self, server: str, npc: str, note_id: str) -> bool:
        async with self._lock((server, npc)):
            notes = await self._load_notes(server, npc)
            kept = tuple(note for note in notes if note.id != note_id)
            if kept == notes:
                return False
            await self._save_notes(server, npc, kept)
            return True

    async def _fold(self, conversation: Conversation, summarize: Summarizer) -> Conversation:
        exchanges = conversation.exchanges
        count = max(len(exchanges) - self._window, self._fold_batch)
        try:
            summary = await summarize(conversation.summary, exchanges[:count])
        except Exception:
            log.exception("summarizing %s failed; keeping the exchanges for the next try", conversation.key)
            if len(exchanges) <= self._hard_cap:
                return conversation
            log.warning("%s: dropping %d exchanges unsummarized", conversation.key, len(exchanges) - self._hard_cap)
            return conversation.model_copy(update={"exchanges": exchanges[-self._hard_cap :]})
        return conversation.model_copy(update={"summary": summary.strip(), "exchanges": exchanges[count:]})

    async def _replace_reply(self, key: ConversationKey, target: RememberedExchange, text: str) -> Conversation:
        async with self._lock(key):
            current = await self._load(key)
            fixed = target.model_copy(update={"npc_reply": text, "corrected": True})
            exchanges = tuple(fixed if exchange == target else exchange for exchange in current.exchanges)
            return await self._save(current.model_copy(update={"exchanges": exchanges}))

    def _lock(self, key: object) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def _npc_dir(self, server: str, npc: str) -> Path:
        return self._root / _file_stem(server) / _file_stem(npc)

    def _conversation_path(self, key: ConversationKey) -> Path:
        return self._npc_dir(key.server, key.npc) / "players" / f"{_file_stem(key.player)}.json"

    async def _keys_of(self, server: str, npc: str) -> list[ConversationKey]:
        """Every conversation of the NPC that is on disk: corrections may name a turn with any player."""
        players = self._npc_dir(server, npc) / "players"
        paths = await asyncio.to_thread(lambda: sorted(players.glob("*.json")) if players.is_dir() else [])
        return [ConversationKey(server=server, npc=npc, player=unquote(path.stem)) for path in paths]

    async def _load(self, key: ConversationKey) -> Conversation:
        cached = self._conversations.get(key)
        if cached is None:
            stored = await asyncio.to_thread(read_model, self._conversation_path(key), Conversation)
            cached = stored if stored is not None and stored.key == key else Conversation(key=key)
            self._conversations[key] = cached
        return cached

    async def _save(self, conversation: Conversation) -> Conversation:
        await asyncio.to_thread(write_model, self._conversation_path(conversation.key), conversation)
        self._conversations[conversation.key] = conversation
        return conversation

    async def _load_notes(self, server: str, npc: str) -> tuple[NpcNote, ...]:
        cached = self._notes.get((server, npc))
        if cached is None:
            stored = await asyncio.to_thread(read_model, self._npc_dir(server, npc) / "notes.json", _NotesFile)
            cached = stored.notes if stored is not None else ()
            self._notes[(server, npc)] = cached
        return cached

    async def _save_notes(self, server: str, npc: str, notes: tuple[NpcNote, ...]) -> tuple[NpcNote, ...]:
        await asyncio.to_thread(write_model, self._npc_dir(server, npc) / "notes.json", _NotesFile(notes=notes))
        self._notes[(server, npc)] = notes
        return notes
