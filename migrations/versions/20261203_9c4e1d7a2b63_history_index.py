"""items: a (line item, SKU)'s history index; jobs: children by parent

`ix_items_sku_id_line_item_id_job_id` replaces `ix_items_sku_id_job_id`: it answers the history
of a (line item, SKU) across jobs, newest job first, with one index range read, and it still
answers "SKU S of job J" (the SKU's few entries, filtered inside the index). One index instead
of two keeps COPY and the runner's updates at one index write per SKU for this purpose.

Both indexes on `items` are built CONCURRENTLY: on a table of 100M rows a plain CREATE INDEX
holds a SHARE lock for its whole build (minutes), which would stop every submission's COPY and
every runner's outcome write; CONCURRENTLY takes two table scans instead and lets writes go on.
It cannot run inside a transaction, hence the autocommit blocks. The new index is built before
the old one is dropped, so SKU lookups stay indexed throughout.

Revision ID: 9c4e1d7a2b63
Revises: c2a9e7f41b38
Create Date: 2026-12-10 09:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "9c4e1d7a2b63"
down_revision: str | None = "c2a9e7f41b38"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        # An interrupted CONCURRENTLY build leaves an INVALID index behind: start clean.
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_items_sku_id_line_item_id_job_id")
        op.execute(
            "CREATE INDEX CONCURRENTLY ix_items_sku_id_line_item_id_job_id"
            " ON items (sku_id, line_item_id, job_id)"
        )
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_items_sku_id_job_id")
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_jobs_parent_job_id ON jobs (parent_job_id)"
            " WHERE parent_job_id IS NOT NULL"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_jobs_parent_job_id")
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_items_sku_id_job_id")
        op.execute("CREATE INDEX CONCURRENTLY ix_items_sku_id_job_id ON items (sku_id, job_id)")
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_items_sku_id_line_item_id_job_id")
