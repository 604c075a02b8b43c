"""API keys get a role: submit, read or operate; keys made before roles existed operate

Revision ID: 3b7d2e91c4a0
Revises: 5e1f0c2a9d47
Create Date: 2026-12-03 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3b7d2e91c4a0"
down_revision: str | None = "5e1f0c2a9d47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: Postgres stores it in the catalog, no table rewrite. Every key that
    # exists could do everything until now, so it keeps doing so.
    op.add_column(
        "api_keys",
        sa.Column("role", sa.String(16), nullable=False, server_default="operate"),
    )


def downgrade() -> None:
    op.drop_column("api_keys", "role")
