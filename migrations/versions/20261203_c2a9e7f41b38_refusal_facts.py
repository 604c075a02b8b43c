"""refusal_facts: what the API taught by refusing a change (a SKU's minimum bid, a SKU missing
from the catalog, a line item that refuses bid overrides, the change itself), with its evidence
and an expiry

Revision ID: c2a9e7f41b38
Revises: 8f4c1d2b7e65
Create Date: 2026-12-03 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c2a9e7f41b38"
down_revision: str | None = "8f4c1d2b7e65"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "refusal_facts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("line_item_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.String(100), nullable=True),
        sa.Column("sku_id", sa.String(500), nullable=True),
        sa.Column("min_bid", sa.Numeric(14, 4), nullable=True),
        sa.Column("refused_bid", sa.Numeric(14, 4), nullable=True),
        sa.Column("action", sa.String(16), nullable=True),
        sa.Column("bid", sa.Numeric(14, 4), nullable=True),
        sa.Column("error_code", sa.String(200), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("trace_id", sa.String(200), nullable=True),
        sa.Column(
            "observed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refusal_facts")),
    )
    op.create_index(
        "ix_refusal_facts_line_item_id_sku_id", "refusal_facts", ["line_item_id", "sku_id"]
    )
    op.create_index(
        "ix_refusal_facts_account_id_sku_id",
        "refusal_facts",
        ["account_id", "sku_id"],
        postgresql_where=sa.text("account_id IS NOT NULL"),
    )
    op.create_index("ix_refusal_facts_expires_at", "refusal_facts", ["expires_at"])


def downgrade() -> None:
    op.drop_table("refusal_facts")
