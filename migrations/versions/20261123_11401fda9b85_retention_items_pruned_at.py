"""Retention: jobs.items_pruned_at, and an index of finished jobs whose items are still there

Revision ID: 11401fda9b85
Revises: 85dd1104e24a
Create Date: 2026-11-23 01:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "11401fda9b85"
down_revision: str | None = "85dd1104e24a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column without a default: no table rewrite. The jobs table holds one row per
    # job, so a plain CREATE INDEX is brief.
    op.add_column("jobs", sa.Column("items_pruned_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_jobs_finished_at_unpruned",
        "jobs",
        ["finished_at"],
        unique=False,
        postgresql_where=sa.text("finished_at IS NOT NULL AND items_pruned_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_jobs_finished_at_unpruned",
        table_name="jobs",
        postgresql_where=sa.text("finished_at IS NOT NULL AND items_pruned_at IS NULL"),
    )
    op.drop_column("jobs", "items_pruned_at")
