"""HTTP API: api_keys; jobs: not_before, callback_url and the notification delivery record

Revision ID: 85dd1104e24a
Revises: 7c5ba64ade9a
Create Date: 2026-11-23 00:16:46.948592
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "85dd1104e24a"
down_revision: str | None = "7c5ba64ade9a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.add_column("jobs", sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("callback_url", sa.Text(), nullable=True))
    op.add_column(
        "jobs", sa.Column("notify_attempts", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column("jobs", sa.Column("notify_last_status", sa.Integer(), nullable=True))
    op.add_column("jobs", sa.Column("notify_last_error", sa.Text(), nullable=True))
    op.add_column("jobs", sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_jobs_finished_at_undelivered",
        "jobs",
        ["finished_at"],
        unique=False,
        postgresql_where=sa.text("callback_url IS NOT NULL AND notified_at IS NULL"),
    )
    op.create_index("ix_jobs_submitted_by_id", "jobs", ["submitted_by", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_jobs_submitted_by_id", table_name="jobs")
    op.drop_index(
        "ix_jobs_finished_at_undelivered",
        table_name="jobs",
        postgresql_where=sa.text("callback_url IS NOT NULL AND notified_at IS NULL"),
    )
    op.drop_column("jobs", "notified_at")
    op.drop_column("jobs", "notify_last_error")
    op.drop_column("jobs", "notify_last_status")
    op.drop_column("jobs", "notify_attempts")
    op.drop_column("jobs", "callback_url")
    op.drop_column("jobs", "not_before")
    op.drop_table("api_keys")
