"""What goes into and comes out of the store: pydantic models, never ORM objects."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

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
    created_at: AwareDatetime | None = Field(None, description="when it was written; default: now")

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


AdviceKind = Literal["steering", "fact", "mood", "warning"]
RecommendationStatus = Literal["pending", "active", "rejected"]


class AdviceItem(_Record):
    """One suggestion of the advisor: 1 = nice to have ... 5 = must follow now; it applies for `lifetime_minutes`
    from the moment its recommendation becomes active. `warning` names what went wrong for kind "warning"."""

    kind: AdviceKind
    text: Text
    priority: int = Field(ge=1, le=5)
    lifetime_minutes: int = Field(ge=1)
    warning: Name | None = None


class NewRecommendation(_Record):
    server: Name
    npc: Name
    steering: list[str] = []
    facts: list[str] = []
    mood: Name | None = None
    warnings: list[str] = []
    items: list[AdviceItem] = []
    status: Literal["pending", "active"] = Field("active", description="pending: waits for an operator's decision")
    pass_id: int | None = None
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

    @classmethod
    def from_items(
        cls, server: str, npc: str, items: list[AdviceItem], *, status: Literal["pending", "active"], **extra: Any
    ) -> NewRecommendation:
        """A recommendation whose text lists are filled from its items."""
        mood = next((item.text[:NAME_LENGTH] for item in items if item.kind == "mood"), None)
        return cls(
            server=server,
            npc=npc,
            steering=[item.text for item in items if item.kind == "steering"],
            facts=[item.text for item in items if item.kind == "fact"],
            mood=mood,
            warnings=[f"{item.warning}: {item.text}" for item in items if item.kind == "warning"],
            items=items,
            status=status,
            **extra,
        )


class Recommendation(_Record):
    id: int
    server: str
    npc: str
    steering: list[str]
    facts: list[str]
    mood: str | None
    warnings: list[str]
    items: list[AdviceItem]
    status: RecommendationStatus
    priority: int = Field(description="the highest priority of its items")
    expires_at: datetime | None = Field(description="when its last item stops applying; None until active")
    decided_by: str | None
    decided_at: datetime | None
    pass_id: int | None
    created_at: datetime


class ActiveAdvice(_Record):
    """One item that applies to an NPC's next turn."""

    recommendation_id: int
    kind: AdviceKind
    text: str
    priority: int
    expires_at: datetime
    warning: str | None = None


class AdvisorCursor(_Record):
    """How far the advisor has read a server's transcript: a day file (YYYY-MM-DD) and a byte offset in it."""

    day: str = Field(pattern=r"^(\d{4}-\d\d-\d\d)?$")
    offset: int = Field(ge=0)


PassOutcome = Literal["running", "ok", "failed"]


class PassUsage(_Record):
    """What a pass read and spent. Tokens are counted as the backends stream them (output) and estimated from the
    prompt's length (input: characters / 4)."""

    lines: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cache_hits: int = 0
    recommendations: int = 0


class AdvisorPassRecord(_Record):
    id: int
    server: str
    trigger: str
    outcome: PassOutcome
    reason: str | None
    detail: str | None
    usage: PassUsage
    started_at: datetime
    finished_at: datetime | None


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
