"""Condensing: each NPC's new transcript lines become a short digest written by the light model.

Lines are grouped per NPC (what it said, what was said to it, notes and corrections for it), cut into chunks of at
most `chunk_chars` on line boundaries, and each chunk is condensed on its own, so a transcript that grew by
megabytes costs many small calls instead of one that overflows the model. A chunk's digest is cached under a hash of
its input (prompt version, model, NPC and lines): a repeated pass over the same lines calls no model at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from host.advisor.shared_state import SharedState
from host.llm.base import LLM, ChatMessage, GenerationOptions, complete
from host.profiles.schema import AdvisorModelSpec, NpcProfile
from host.transcript.lines import NoteLine, SpokenLine, TranscriptLine

CONDENSE_PROMPT_VERSION = "condense-1"
CHARS_PER_TOKEN_ESTIMATE = 4

CONDENSE_SYSTEM = (
    "You write short notes for a game master. Below is a log of a role-play game: players talk with the character "
    "{name}. In two or three plain sentences, say what the players asked or did and what {name} answered. "
    "Name the players. Write only the notes."
)


@dataclass
class CondenseUsage:
    calls: int = 0
    cache_hits: int = 0
    tokens_in: int = 0
    tokens_out: int = 0


@dataclass(frozen=True)
class NpcDigest:
    npc: str
    digest: str
    lines: int


@dataclass
class Condenser:
    llm: LLM
    spec: AdvisorModelSpec
    model_key: str
    cache: SharedState
    chunk_chars: int
    digest_chars: int
    usage: CondenseUsage = field(default_factory=CondenseUsage)

    async def digest(self, npc: NpcProfile, lines: Sequence[TranscriptLine]) -> NpcDigest | None:
        """The NPC's digest of `lines`, None when none of them concerns it."""
        text_lines = [text for line in lines if (text := line_for(npc.id, line)) is not None]
        if not text_lines:
            return None
        parts = [await self._condense_chunk(npc, chunk) for chunk in chunks(text_lines, self.chunk_chars)]
        joined = " ".join(part for part in parts if part)
        # The newest part matters most to the next turns: a digest over the limit keeps its end.
        return NpcDigest(npc.id, joined[-self.digest_chars :].strip(), len(text_lines))

    async def _condense_chunk(self, npc: NpcProfile, chunk: str) -> str:
        key = hashlib.sha256(f"{CONDENSE_PROMPT_VERSION}\n{self.model_key}\n{npc.id}\n{chunk}".encode()).hexdigest()
        cached = await self.cache.digest(key)
        if cached is not None:
            self.usage.cache_hits += 1
            return cached
        messages = [
            ChatMessage(role="system", content=CONDENSE_SYSTEM.format(name=npc.name)),
            ChatMessage(role="user", content=chunk),
        ]
        options = GenerationOptions(
            temperature=self.spec.temperature, max_tokens=self.spec.max_tokens, model=self.spec.model, seed=0
        )
        reply = await complete(self.llm, messages, options)
        self.usage.calls += 1
        self.usage.tokens_in += sum(len(m.content) for m in messages) // CHARS_PER_TOKEN_ESTIMATE
        self.usage.tokens_out += reply.pieces
        digest = " ".join(reply.text.split())
        await self.cache.keep_digest(key, digest)
        return digest


def line_for(npc: str, line: TranscriptLine) -> str | None:
    """The line as the condensing model reads it, or None when it does not concern `npc`."""
    if isinstance(line, NoteLine):
        return f"(note for {npc}) {line.text}" if line.npc == npc else None
    if not isinstance(line, SpokenLine) or line.source in ("advisor", "system"):
        return None
    if line.source == "npc" and line.speaker == npc:
        return f"{npc}: {line.text}"
    if line.addressee == npc:
        label = "(admin correction) " if line.source == "admin" else ""
        return f"{label}{line.speaker}: {line.text}"
    return None


def chunks(lines: Sequence[str], chunk_chars: int) -> list[str]:
    """Lines joined into chunks of at most `chunk_chars` (a longer single line is cut), in order."""
    result: list[str] = []
    current: list[str] = []
    size = 0
    for raw in lines:
        line = raw[:chunk_chars]
        if current and size + len(line) + 1 > chunk_chars:
            result.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        result.append("\n".join(current))
    return result
