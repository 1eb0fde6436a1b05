"""The transcript's line models: what one line of `transcripts/<server>/<date>.log` holds.

Two kinds: a `SpokenLine` (someone said something: a player, an NPC, the advisor, the system) and a `NoteLine` (an
admin's note to one NPC, typed by hand or written by the admin page). The text form is in `grammar.py`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from host.profiles.schema import NpcId

LineSource = Literal["voice", "chat", "npc", "admin", "advisor", "system"]
# Speakers are player or NPC names; the grammar quotes any that is not a bare word, so only a size cap is needed.
Name = Annotated[str, StringConstraints(min_length=1, max_length=64)]
TagKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


def _utc_millis(value: datetime | None) -> datetime | None:
    """Timestamps are written with millisecond precision, so keep no more than that (parse(format(x)) == x)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware (UTC)")
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


class _Line(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ts: datetime | None = Field(None, description="UTC, millisecond precision; hand-written lines may omit it")

    @field_validator("ts")
    @classmethod
    def _check_ts(cls, value: datetime | None) -> datetime | None:
        return _utc_millis(value)


class LinePosition(BaseModel):
    """Where the speaker stood. The dimension is written only when it is not the overworld."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    x: float
    y: float
    z: float
    dimension: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.-]+:[a-z0-9_./-]+$")] = "minecraft:overworld"

    @field_validator("x", "y", "z")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("coordinates must be finite")
        return value


class SpokenLine(_Line):
    """One utterance: `chat Alice @(1.0,64.0,2.5) > bram: "Any rooms free?"`.

    Well-known tags: `turn` (turn id), `emotion`, `interrupted` (a flag: empty value), `<stage>_ms` (timings).
    """

    kind: Literal["spoken"] = "spoken"
    source: LineSource
    speaker: Name
    position: LinePosition | None = None
    addressee: Name | None = None
    tags: dict[TagKey, str] = {}
    text: str


class NoteLine(_Line):
    """An admin's note to one NPC: `NOTE @bram: He owes Alice a free ale.` It stays with the NPC until removed."""

    kind: Literal["note"] = "note"
    npc: NpcId
    author: Name | None = Field(None, description="who wrote it; hand-written notes usually leave it out")
    text: str

    @field_validator("text")
    @classmethod
    def _strip(cls, value: str) -> str:
        # Hand-typed notes carry stray spaces at either end; they are never meaningful.
        stripped = value.strip()
        if not stripped:
            raise ValueError("a note needs text")
        return stripped


TranscriptLine = Annotated[SpokenLine | NoteLine, Field(discriminator="kind")]
