"""Admin page sessions in the database (hashed ids), NPC mute held like pause, and per-server bridge tokens set on
the admin page (salted hashes, with who set and revoked each).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = sa.String(64)


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("npcs") as batch:
        batch.add_column(sa.Column("muted", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "admin_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("admin_users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
    )
    op.create_index("ix_admin_sessions_user_id", "admin_sessions", ["user_id"])
    op.create_index("ix_admin_sessions_expires_at", "admin_sessions", ["expires_at"])
    op.create_table(
        "bridge_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("server_id", sa.Integer(), sa.ForeignKey("servers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_by", NAME, nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("revoked_by", NAME, nullable=True),
        sa.Column("revoked_at", _utc(), nullable=True),
    )
    op.create_index("ix_bridge_tokens_server_id_revoked_at", "bridge_tokens", ["server_id", "revoked_at"])


def downgrade() -> None:
    op.drop_index("ix_bridge_tokens_server_id_revoked_at", "bridge_tokens")
    op.drop_table("bridge_tokens")
    op.drop_index("ix_admin_sessions_expires_at", "admin_sessions")
    op.drop_index("ix_admin_sessions_user_id", "admin_sessions")
    op.drop_table("admin_sessions")
    with op.batch_alter_table("npcs") as batch:
        batch.drop_column("muted")
