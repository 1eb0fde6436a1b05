"""The advisor: recommendation items with priority, lifetime and approval status; the transcript cursor and the
record of every pass.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = sa.String(64)


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "advisor_passes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("server_id", sa.Integer(), sa.ForeignKey("servers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("tokens_in", sa.Integer(), nullable=False),
        sa.Column("tokens_out", sa.Integer(), nullable=False),
        sa.Column("cache_hits", sa.Integer(), nullable=False),
        sa.Column("recommendations", sa.Integer(), nullable=False),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("finished_at", _utc(), nullable=True),
    )
    op.create_index("ix_advisor_passes_server_id_started_at", "advisor_passes", ["server_id", "started_at"])
    op.create_table(
        "advisor_cursors",
        sa.Column("server_id", sa.Integer(), sa.ForeignKey("servers.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("offset", sa.Integer(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
    )
    with op.batch_alter_table("recommendations") as batch:
        batch.add_column(sa.Column("items", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="active"))
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("expires_at", _utc(), nullable=True))
        batch.add_column(sa.Column("decided_by", NAME, nullable=True))
        batch.add_column(sa.Column("decided_at", _utc(), nullable=True))
        batch.add_column(sa.Column("pass_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_recommendations_pass_id_advisor_passes", "advisor_passes", ["pass_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_recommendations_npc_id_status_expires_at", ["npc_id", "status", "expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("recommendations") as batch:
        batch.drop_index("ix_recommendations_npc_id_status_expires_at")
        batch.drop_constraint("fk_recommendations_pass_id_advisor_passes", type_="foreignkey")
        for column in ("pass_id", "decided_at", "decided_by", "expires_at", "priority", "status", "items"):
            batch.drop_column(column)
    op.drop_table("advisor_cursors")
    op.drop_index("ix_advisor_passes_server_id_started_at", "advisor_passes")
    op.drop_table("advisor_passes")
