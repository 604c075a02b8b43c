"""jobs.request_digest: what a job's idempotency key was used for, so the same key with another
request is a conflict instead of the earlier job

Revision ID: 8f4c1d2b7e65
Revises: 3b7d2e91c4a0
Create Date: 2026-12-03 11:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "8f4c1d2b7e65"
down_revision: str | None = "3b7d2e91c4a0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: no table rewrite. Jobs stored before it have none and keep
    # answering their key as before.
    op.add_column("jobs", sa.Column("request_digest", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "request_digest")
