"""What goes into and comes out of the store: pydantic models, never ORM objects."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, StringConstraints

from host.events import AdminCorrection, AdminNote, AdvisorRecommendation, Source
from host.store.models import EVENT_ID_LENGTH, NAME_LENGTH, AdminRole, utc_now

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_LENGTH)]
EventId = Annotated[str, StringConstraints(min_length=1, max_length=EVENT_ID_LENGTH)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConversationKey(_Record):
    """One NPC talking with one player on one server."""

    server: Name
    npc: Name
    player: Name


class TurnRecord(_Record):
    """A finished turn to record. `cause_id` is the id of the event that caused it (redeliveries share it)."""

    server: Name
    npc: Name
    player: Name
    cause_id: EventId
    turn_id: EventId | None = None
    source: Source
    player_text: str
    npc_reply: str
    interrupted: bool = False
    emotion: Annotated[str, StringConstraints(max_length=32)] | None = None
    timings_ms: dict[str, float] = {}
    created_at: AwareDatetime = Field(default_factory=utc_now)

    @property
    def key(self) -> ConversationKey:
        return ConversationKey(server=self.server, npc=self.npc, player=self.player)


class Exchange(_Record):
    """A recorded turn as memory and the admin page see it."""

    player: str
    source: str
    player_text: str
    npc_reply: str
    corrected_reply: str | None
    interrupted: bool
    emotion: str | None
    timings_ms: dict[str, float]
    cause_id: str
    turn_id: str | None
    created_at: datetime

    @property
    def remembered_reply(self) -> str:
        """What the NPC should remember having said: an admin's correction wins over the original."""
        return self.corrected_reply if self.corrected_reply is not None else self.npc_reply


class NewNote(_Record):
    server: Name
    npc: Name
    author: Name
    text: Text
    event_id: EventId | None = None

    @classmethod
    def from_event(cls, event: AdminNote) -> NewNote:
        return cls(server=event.server, npc=event.npc, author=event.author, text=event.text, event_id=event.id)


class Note(_Record):
    id: int
    npc: str
    author: str
    text: str
    created_at: datetime
    removed_at: datetime | None
    removed_by: str | None

    @property
    def standing(self) -> bool:
        return self.removed_at is None


class NewCorrection(_Record):
    """What an NPC should have said. `turn_id` names the turn; without it, the NPC's latest turn is corrected."""

    server: Name
    npc: Name
    author: Name
    text: Text
    turn_id: EventId | None = None
    event_id: EventId | None = None

    @classmethod
    def from_event(cls, event: AdminCorrection) -> NewCorrection:
        return cls(
            server=event.server,
            npc=event.npc,
            author=event.author,
            text=event.text,
            turn_id=event.turn_id,
            event_id=event.id,
        )


class Correction(_Record):
    id: int
    npc: str
    author: str
    text: str
    turn_id: str | None = Field(description="the corrected turn; None when the NPC had no turn to correct")
    created_at: datetime


class NewRecommendation(_Record):
    server: Name
    npc: Name
    steering: list[str] = []
    facts: list[str] = []
    mood: Name | None = None
    warnings: list[str] = []
    event_id: EventId | None = None

    @classmethod
    def from_event(cls, event: AdvisorRecommendation) -> NewRecommendation:
        return cls(
            server=event.server,
            npc=event.npc,
            steering=event.steering,
            facts=event.facts,
            mood=event.mood,
            warnings=event.warnings,
            event_id=event.id,
        )


class Recommendation(_Record):
    id: int
    npc: str
    steering: list[str]
    facts: list[str]
    mood: str | None
    warnings: list[str]
    created_at: datetime


class NewAdminUser(_Record):
    name: Name
    password: SecretStr = Field(min_length=8)
    role: AdminRole = "viewer"


class AdminUser(_Record):
    """An admin user without the password hash: the hash never leaves the store."""

    id: int
    name: str
    role: AdminRole
    created_at: datetime
    last_login_at: datetime | None
