"""items.note: what promobulk changed in a SKU's request before sending it (a bid raised to the
SKU's known minimum under `clamp_to_min_bid`), shown with its outcome

Revision ID: d5e8a3f16c27
Revises: 9c4e1d7a2b63
Create Date: 2026-12-03 14:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d5e8a3f16c27"
down_revision: str | None = "9c4e1d7a2b63"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: no rewrite of a table of millions of rows.
    op.add_column("items", sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("items", "note")
