"""Initial schema: servers, NPCs, players, conversations, turns, notes, corrections, recommendations, admin users.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = sa.String(64)
EVENT_ID = sa.String(100)


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer(), primary_key=True)


def _fk(column: str, target: str, *, nullable: bool = False, ondelete: str = "CASCADE") -> sa.Column[int]:
    return sa.Column(column, sa.Integer(), sa.ForeignKey(target, ondelete=ondelete), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "servers",
        _id(),
        sa.Column("name", NAME, nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.UniqueConstraint("name", name="uq_servers_name"),
    )
    for table in ("npcs", "players"):
        op.create_table(
            table,
            _id(),
            _fk("server_id", "servers.id"),
            sa.Column("name", NAME, nullable=False),
            sa.Column("created_at", _utc(), nullable=False),
            sa.UniqueConstraint("server_id", "name", name=f"uq_{table}_server_id_name"),
        )
    op.create_table(
        "conversations",
        _id(),
        _fk("server_id", "servers.id"),
        _fk("npc_id", "npcs.id"),
        _fk("player_id", "players.id"),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("last_active_at", _utc(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("summary_updated_at", _utc(), nullable=True),
        sa.Column("summarized_through", sa.Integer(), nullable=True),
        sa.UniqueConstraint("npc_id", "player_id", name="uq_conversations_npc_id_player_id"),
    )
    op.create_index("ix_conversations_server_id_last_active_at", "conversations", ["server_id", "last_active_at"])
    op.create_table(
        "turns",
        _id(),
        _fk("conversation_id", "conversations.id"),
        _fk("npc_id", "npcs.id"),
        sa.Column("cause_id", EVENT_ID, nullable=False),
        sa.Column("turn_id", EVENT_ID, nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("player_text", sa.Text(), nullable=False),
        sa.Column("npc_reply", sa.Text(), nullable=False),
        sa.Column("interrupted", sa.Boolean(), nullable=False),
        sa.Column("corrected_reply", sa.Text(), nullable=True),
        sa.Column("emotion", sa.String(32), nullable=True),
        sa.Column("timings_ms", sa.JSON(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.UniqueConstraint("cause_id", name="uq_turns_cause_id"),
        sa.UniqueConstraint("turn_id", name="uq_turns_turn_id"),
    )
    op.create_index("ix_turns_conversation_id_created_at", "turns", ["conversation_id", "created_at"])
    op.create_index("ix_turns_npc_id_created_at", "turns", ["npc_id", "created_at"])
    op.create_table(
        "notes",
        _id(),
        _fk("npc_id", "npcs.id"),
        sa.Column("event_id", EVENT_ID, nullable=True),
        sa.Column("author", NAME, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("removed_at", _utc(), nullable=True),
        sa.Column("removed_by", NAME, nullable=True),
        sa.UniqueConstraint("event_id", name="uq_notes_event_id"),
    )
    op.create_index("ix_notes_npc_id_removed_at", "notes", ["npc_id", "removed_at"])
    op.create_table(
        "corrections",
        _id(),
        _fk("npc_id", "npcs.id"),
        _fk("turn_row_id", "turns.id", nullable=True, ondelete="SET NULL"),
        sa.Column("event_id", EVENT_ID, nullable=True),
        sa.Column("author", NAME, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.UniqueConstraint("event_id", name="uq_corrections_event_id"),
    )
    op.create_index("ix_corrections_npc_id", "corrections", ["npc_id"])
    op.create_index("ix_corrections_turn_row_id", "corrections", ["turn_row_id"])
    op.create_table(
        "recommendations",
        _id(),
        _fk("npc_id", "npcs.id"),
        sa.Column("event_id", EVENT_ID, nullable=True),
        sa.Column("steering", sa.JSON(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("mood", NAME, nullable=True),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.UniqueConstraint("event_id", name="uq_recommendations_event_id"),
    )
    op.create_index("ix_recommendations_npc_id_created_at", "recommendations", ["npc_id", "created_at"])
    op.create_table(
        "admin_users",
        _id(),
        sa.Column("name", NAME, nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("last_login_at", _utc(), nullable=True),
        sa.UniqueConstraint("name", name="uq_admin_users_name"),
        # The models' naming convention turns "role" into ck_admin_users_role.
        sa.CheckConstraint("role IN ('admin', 'operator', 'viewer')", name="role"),
    )


def downgrade() -> None:
    for table in (
        "admin_users",
        "recommendations",
        "corrections",
        "notes",
        "turns",
        "conversations",
        "players",
        "npcs",
        "servers",
    ):
        op.drop_table(table)
