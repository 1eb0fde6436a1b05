"""ORM tables. The initial migration (migrations/versions/0001_initial.py) creates exactly these; a test compares them.

Timestamps are timezone-aware UTC on both databases (SQLite stores them naive; `UtcDateTime` restores the zone).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, get_args

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAME_LENGTH = 64
EVENT_ID_LENGTH = 100  # room for "<event id>:<npc id>" cause ids of group scenes
AdminRole = Literal["admin", "operator", "viewer"]
ADMIN_ROLES: tuple[str, ...] = get_args(AdminRole)

# Fixed constraint names, so migrations can address them on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the store keeps timezone-aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


class Server(Base):
    __tablename__ = "servers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class Npc(Base):
    __tablename__ = "npcs"
    __table_args__ = (UniqueConstraint("server_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    # Paused by an operator: every brain process reads it, so a pause holds however many there are.
    paused: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Muted by an operator (its voice stays off the bridge; its lines still reach chat), held across restarts.
    muted: Mapped[bool] = mapped_column(default=False, server_default=false())


class Player(Base):
    __tablename__ = "players"
    __table_args__ = (UniqueConstraint("server_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class Conversation(Base):
    """One rolling conversation per NPC and player; `summary` condenses what fell out of the recent window."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("npc_id", "player_id"),
        Index(None, "server_id", "last_active_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"))
    npc_id: Mapped[int] = mapped_column(ForeignKey("npcs.id", ondelete="CASCADE"))
    player_id: Mapped[int] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    last_active_at: Mapped[datetime] = mapped_column(default=utc_now)
    summary: Mapped[str | None] = mapped_column(Text)
    summary_updated_at: Mapped[datetime | None]
    # Row id of the newest turn the summary covers; conversation memory's window is the turns after it. No foreign
    # key: turns already point at conversations, and a cycle would complicate every migration.
    summarized_through: Mapped[int | None]


class Turn(Base):
    """One exchange: what the player said and what the NPC answered. `cause_id` (the event that caused the turn) and
    `turn_id` are unique, so a redelivered event never makes a second row."""

    __tablename__ = "turns"
    __table_args__ = (Index(None, "conversation_id", "created_at"), Index(None, "npc_id", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    npc_id: Mapped[int] = mapped_column(ForeignKey("npcs.id", ondelete="CASCADE"))
    cause_id: Mapped[str] = mapped_column(String(EVENT_ID_LENGTH), unique=True)
    turn_id: Mapped[str | None] = mapped_column(String(EVENT_ID_LENGTH), unique=True)
    source: Mapped[str] = mapped_column(String(16))
    player_text: Mapped[str] = mapped_column(Text)
    npc_reply: Mapped[str] = mapped_column(Text)
    interrupted: Mapped[bool] = mapped_column(default=False)
    corrected_reply: Mapped[str | None] = mapped_column(Text)
    emotion: Mapped[str | None] = mapped_column(String(32))
    timings_ms: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class Note(Base):
    """An admin's note to an NPC. It stands until removed; removed notes stay for the record."""

    __tablename__ = "notes"
    __table_args__ = (Index(None, "npc_id", "removed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    npc_id: Mapped[int] = mapped_column(ForeignKey("npcs.id", ondelete="CASCADE"))
    event_id: Mapped[str | None] = mapped_column(String(EVENT_ID_LENGTH), unique=True)
    author: Mapped[str] = mapped_column(String(NAME_LENGTH))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    removed_at: Mapped[datetime | None]
    removed_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH))


class Correction(Base):
    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    npc_id: Mapped[int] = mapped_column(ForeignKey("npcs.id", ondelete="CASCADE"), index=True)
    turn_row_id: Mapped[int | None] = mapped_column(ForeignKey("turns.id", ondelete="SET NULL"), index=True)
    event_id: Mapped[str | None] = mapped_column(String(EVENT_ID_LENGTH), unique=True)
    author: Mapped[str] = mapped_column(String(NAME_LENGTH))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


class Recommendation(Base):
    """What the advisor suggests for an NPC's next turns: one row per NPC and pass. `items` holds each suggestion
    with its kind, priority and lifetime; the text lists repeat them for readers that want plain strings. In approval
    mode a row waits as "pending" until an operator accepts ("active") or rejects it; `expires_at` is set when it
    becomes active (its longest-lived item), so expired rows are found by index."""

    __tablename__ = "recommendations"
    __table_args__ = (Index(None, "npc_id", "created_at"), Index(None, "npc_id", "status", "expires_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    npc_id: Mapped[int] = mapped_column(ForeignKey("npcs.id", ondelete="CASCADE"))
    event_id: Mapped[str | None] = mapped_column(String(EVENT_ID_LENGTH), unique=True)
    steering: Mapped[list[str]] = mapped_column(default=list)
    facts: Mapped[list[str]] = mapped_column(default=list)
    mood: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    warnings: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON(), default=list, server_default="[]")
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    priority: Mapped[int] = mapped_column(default=0, server_default="0")
    expires_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    decided_at: Mapped[datetime | None]
    pass_id: Mapped[int | None] = mapped_column(ForeignKey("advisor_passes.id", ondelete="SET NULL"))


class AdvisorCursor(Base):
    """Where the advisor's last successful pass of a server stopped reading the transcript."""

    __tablename__ = "advisor_cursors"

    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[str] = mapped_column(String(10))
    offset: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)


class AdvisorPass(Base):
    """One advisor pass: what triggered it, what it cost and how it ended ("running", "ok", "failed")."""

    __tablename__ = "advisor_passes"
    __table_args__ = (Index(None, "server_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16), default="running")
    reason: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    lines: Mapped[int] = mapped_column(default=0)
    tokens_in: Mapped[int] = mapped_column(default=0)
    tokens_out: Mapped[int] = mapped_column(default=0)
    cache_hits: Mapped[int] = mapped_column(default=0)
    recommendations: Mapped[int] = mapped_column(default=0)
    started_at: Mapped[datetime] = mapped_column(default=utc_now)
    finished_at: Mapped[datetime | None]


class AdminUser(Base):
    __tablename__ = "admin_users"
    __table_args__ = (CheckConstraint(f"role IN {ADMIN_ROLES!r}", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    last_login_at: Mapped[datetime | None]


class AdminSession(Base):
    """A signed-in admin page session. Only a SHA-256 of the cookie's random value is kept: a copy of the database
    opens no session. Every admin process on this database honours it, and a restart keeps it."""

    __tablename__ = "admin_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("admin_users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class BridgeToken(Base):
    """A voice bridge token an admin set for a server: only its salted hash. One row per token ever issued, so who
    set and who revoked each is on record; the standing token of a server is its row without `revoked_at`."""

    __tablename__ = "bridge_tokens"
    __table_args__ = (Index(None, "server_id", "revoked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    server_id: Mapped[int] = mapped_column(ForeignKey("servers.id", ondelete="CASCADE"))
    salt: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(NAME_LENGTH))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    revoked_by: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    revoked_at: Mapped[datetime | None]
