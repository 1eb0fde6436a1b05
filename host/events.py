"""Events on the hub. Every event has a `type`, a schema `version` and a unique `id` (handlers dedupe by it).

Audio travels as raw bytes (`audio` fields); the bus codec keeps them out of the JSON part, never base64.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from host.errors import EventValidationError
from host.profiles.schema import NpcProfile

Source = Literal["voice", "chat", "admin", "advisor", "system"]


def _new_id() -> str:
    return uuid.uuid4().hex


class Position(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    x: float
    y: float
    z: float
    yaw: float = 0.0
    dimension: str = "minecraft:overworld"


class Event(BaseModel):
    """Base of every event. Subclasses fix `type` with a Literal and bump `VERSION` on breaking changes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    VERSION: ClassVar[int] = 1
    BINARY_FIELDS: ClassVar[tuple[str, ...]] = ()

    type: str
    version: int = 1
    id: str = Field(default_factory=_new_id)
    server: str
    ts: float = Field(default_factory=time.time)


class PlayerUtterance(Event):
    """One speech segment after VAD, 16-bit mono PCM, with where the speaker stood."""

    BINARY_FIELDS: ClassVar[tuple[str, ...]] = ("audio",)
    type: Literal["player_utterance"] = "player_utterance"
    player: str
    position: Position | None = None
    audio: bytes = Field(repr=False)
    sample_rate: int = Field(16000, gt=0)
    speech_end_ts: float | None = Field(None, description="wall time the speaker went silent (latency origin)")


class PlayerPaused(Event):
    """A player paused mid-utterance (`vad.pause_ms` of silence): the utterance as it will be if they do not go on.
    The speech role transcribes it speculatively, so STT runs while the endpoint wait does; the `PlayerUtterance`
    whose `id` is `utterance_id` follows when the silence lasts, a later `PlayerPaused` when the player goes on."""

    BINARY_FIELDS: ClassVar[tuple[str, ...]] = ("audio",)
    type: Literal["player_paused"] = "player_paused"
    player: str
    utterance_id: str
    position: Position | None = None
    audio: bytes = Field(repr=False)
    sample_rate: int = Field(16000, gt=0)
    speech_end_ts: float | None = None


# What a player says is cut to this many characters where it enters the host (docs/events.md): a 60,000-character
# chat line would not fit any prompt, and the NPC still answers the beginning.
MAX_PLAYER_TEXT_CHARS = 1000


class PlayerSaid(Event):
    """Text a player said: typed in chat or transcribed from an utterance. Longer text than `MAX_PLAYER_TEXT_CHARS`
    is cut to that length and marked `cut`."""

    type: Literal["player_said"] = "player_said"
    player: str
    text: str
    cut: bool = Field(False, description="the player said more than MAX_PLAYER_TEXT_CHARS; the rest was dropped")
    source: Literal["voice", "chat"] = "chat"
    position: Position | None = None
    confidence: float | None = Field(None, ge=0.0, le=1.0)
    language: str | None = Field(None, description="the language STT heard, when it is not English")
    utterance_id: str | None = None
    speech_end_ts: float | None = None
    endpoint_ts: float | None = Field(None, description="when the bridge ended the utterance (its VAD's end silence)")
    stt_ms: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _cut_long_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("text"), str) and len(data["text"]) > MAX_PLAYER_TEXT_CHARS:
            return {**data, "text": data["text"][:MAX_PLAYER_TEXT_CHARS], "cut": True}
        return data


class PlayerSaidTentative(Event):
    """What a player has said so far, transcribed speculatively while the endpoint wait runs (the speech role, when
    its speculative STT is done before the utterance ended). The brain may start the answer without publishing it
    and commits it when a `PlayerSaid` from the same player with the same text follows; anything else discards it
    without a trace. `text` is the whole line as it would be published, a held first part included."""

    type: Literal["player_said_tentative"] = "player_said_tentative"
    player: str
    text: str = Field(max_length=MAX_PLAYER_TEXT_CHARS)
    position: Position | None = None
    language: str | None = None
    utterance_id: str
    speech_end_ts: float | None = None

    def as_said(self) -> PlayerSaid:
        """The line as the brain would see it if the player said nothing more (for addressing and the prompt)."""
        return PlayerSaid(
            server=self.server,
            player=self.player,
            text=self.text,
            source="voice",
            position=self.position,
            language=self.language,
            utterance_id=self.utterance_id,
            speech_end_ts=self.speech_end_ts,
        )


class PlayerSpeechStarted(Event):
    """A player started speaking (past the VAD's minimum speech): the NPC talking to them stops (barge-in)."""

    type: Literal["player_speech_started"] = "player_speech_started"
    player: str
    position: Position | None = None


class PlayerLeft(Event):
    """A player left the game (the server's log) or the voice bridge: what the host kept about them is forgotten."""

    type: Literal["player_left"] = "player_left"
    player: str


class NpcTurnStarted(Event):
    type: Literal["npc_turn_started"] = "npc_turn_started"
    npc: str
    player: str
    turn_id: str
    cause_id: str = Field(description="id of the PlayerSaid (or admin event) that caused the turn")
    speech_end_ts: float | None = Field(None, description="the end of the player's speech, for a spoken line")


class NpcSentence(Event):
    type: Literal["npc_sentence"] = "npc_sentence"
    npc: str
    player: str
    turn_id: str
    index: int = Field(ge=0)
    text: str
    emotion: str | None = None


class NpcAudio(Event):
    """PCM for one sentence (or a chunk of it). `final` marks the sentence's last chunk."""

    BINARY_FIELDS: ClassVar[tuple[str, ...]] = ("audio",)
    type: Literal["npc_audio"] = "npc_audio"
    npc: str
    turn_id: str
    index: int = Field(ge=0)
    audio: bytes = Field(repr=False)
    sample_rate: int = Field(gt=0)
    final: bool = True


class NpcTurnEnded(Event):
    type: Literal["npc_turn_ended"] = "npc_turn_ended"
    npc: str
    player: str
    turn_id: str
    cause_id: str
    reply: str = Field(description="what was actually said (after guard and interruption)")
    interrupted: bool = False
    timings_ms: dict[str, float] = {}
    actions: list[str] = Field([], max_length=3, description="action tags the NPC asked for (host/npc_actions.py)")


class EntityPosition(Position):
    name: str
    kind: Literal["player", "npc"] = "player"


class NpcTurnCut(Event):
    """Playback of a turn was cut (barge-in, stop) after the players heard `heard`: the record keeps only that."""

    type: Literal["npc_turn_cut"] = "npc_turn_cut"
    npc: str
    player: str
    turn_id: str
    heard: str = Field(description="the sentences played to the end, joined; empty when none was")
    sentences_heard: int = Field(ge=0)


class Positions(Event):
    type: Literal["positions"] = "positions"
    entities: list[EntityPosition]


class AdminNote(Event):
    type: Literal["admin_note"] = "admin_note"
    npc: str
    author: str
    text: str


class AdminCorrection(Event):
    """Replace what an NPC said last with what it should have said; the memory keeps the correction."""

    type: Literal["admin_correction"] = "admin_correction"
    npc: str
    author: str
    turn_id: str | None = None
    text: str


class NpcActed(Event):
    """What became of an action an NPC was asked for (by its reply's tags or an operator): the game adapter's
    verdict, so the transcript shows every action, the refused ones too."""

    type: Literal["npc_acted"] = "npc_acted"
    npc: str
    player: str = Field(description="whom the action concerns: the player answered, or the operator")
    action: str = Field(max_length=64, description="the request as parsed, e.g. 'give 2 bread'")
    outcome: Literal["performed", "refused", "failed"]
    reason: str | None = Field(None, max_length=64, description="why it was refused or failed (a short code)")
    requested_by: Literal["npc", "operator"] = "npc"
    turn_id: str | None = None


class NpcControl(Event):
    type: Literal["npc_control"] = "npc_control"
    npc: str
    action: Literal["pause", "resume", "mute", "unmute", "move", "stop", "say", "reload", "act"]
    position: Position | None = None
    text: str | None = None
    author: str = "system"


class AdvisorRecommendation(Event):
    """The advisor stored a recommendation for an NPC (docs/advisor.md); `status` "pending" waits for an operator."""

    type: Literal["advisor_recommendation"] = "advisor_recommendation"
    npc: str
    steering: list[str] = []
    facts: list[str] = []
    mood: str | None = None
    warnings: list[str] = []
    recommendation_id: int | None = None
    status: Literal["pending", "active"] = "active"


class NpcTrial(Event):
    """An admin tries a line against a draft NPC profile (checked like `npc-host profiles check`) before saving it.
    One brain answers with `NpcTrialReply` and records nothing: no transcript, database, memory, chat or voice."""

    type: Literal["npc_trial"] = "npc_trial"
    profile: NpcProfile
    player: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=MAX_PLAYER_TEXT_CHARS)
    author: str
    deadline_ts: float = Field(description="the admin stops waiting then; a brain reaching it later skips it")


class NpcTrialReply(Event):
    """What the draft NPC of the `NpcTrial` with id `trial_id` answered, or why it could not."""

    type: Literal["npc_trial_reply"] = "npc_trial_reply"
    trial_id: str
    npc: str
    reply: str = ""
    dropped: list[str] = Field([], description="sentences the out-of-character guard dropped, with the reason")
    error: str | None = None


AnyEvent = Annotated[
    PlayerUtterance
    | PlayerPaused
    | PlayerSaid
    | PlayerSaidTentative
    | PlayerSpeechStarted
    | PlayerLeft
    | NpcTurnStarted
    | NpcSentence
    | NpcAudio
    | NpcTurnEnded
    | NpcTurnCut
    | Positions
    | AdminNote
    | AdminCorrection
    | NpcControl
    | NpcActed
    | AdvisorRecommendation
    | NpcTrial
    | NpcTrialReply,
    Field(discriminator="type"),
]

EVENT_TYPES: dict[str, type[Event]] = {
    cls.model_fields["type"].default: cls
    for cls in (
        PlayerUtterance,
        PlayerPaused,
        PlayerSaid,
        PlayerSaidTentative,
        PlayerSpeechStarted,
        PlayerLeft,
        NpcTurnStarted,
        NpcSentence,
        NpcAudio,
        NpcTurnEnded,
        NpcTurnCut,
        Positions,
        AdminNote,
        AdminCorrection,
        NpcControl,
        NpcActed,
        AdvisorRecommendation,
        NpcTrial,
        NpcTrialReply,
    )
}

any_event_adapter: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


class UnknownEventTypeError(EventValidationError):
    code = "event_unknown_type"

    def __init__(self, type_name: str) -> None:
        super().__init__(f"unknown event type {type_name!r} (known: {', '.join(sorted(EVENT_TYPES))})")
        self.type_name = type_name


class EventVersionError(EventValidationError):
    code = "event_version"

    def __init__(self, type_name: str, got: int, expected: int) -> None:
        super().__init__(f"event {type_name!r} has schema version {got}, this host reads version {expected}")
        self.type_name = type_name
        self.got = got
        self.expected = expected


def event_class(type_name: str, version: int) -> type[Event]:
    """The model for a wire `type` and `version`; other versions are refused, never guessed at."""
    cls = EVENT_TYPES.get(type_name)
    if cls is None:
        raise UnknownEventTypeError(type_name)
    if version != cls.VERSION:
        raise EventVersionError(type_name, version, cls.VERSION)
    return cls
