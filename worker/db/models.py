"""Typed SQLAlchemy models: jobs ─< chunks (job x line item) ─< items (one SKU change).

Items reference their chunk by the chunk's natural key (job_id, line_item_id) rather than a
surrogate id: items are streamed in first and chunks are made from them in SQL, so no pass
over millions of item rows is needed to stamp a chunk id on them. Items carry no foreign keys:
per-row RI trigger calls would be added to every COPY (not measured), and the repository is their
only writer.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BID = Numeric(14, 4)
NOW = func.now()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSONB, datetime: DateTime(timezone=True)}


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    status: Mapped[str] = mapped_column(String(32))
    submitted_by: Mapped[str] = mapped_column(String(200))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    priority: Mapped[str] = mapped_column(String(16))
    dry_run: Mapped[bool] = mapped_column(default=False)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    total: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    parent_job_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("jobs.id", ondelete="SET NULL")
    )
    derived_reason: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=NOW)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # Scheduled start: copied to the job's chunks, which the claim already holds back.
    not_before: Mapped[datetime | None]
    # Completion notification: where, and how its delivery went.
    callback_url: Mapped[str | None] = mapped_column(Text)
    notify_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    notify_last_status: Mapped[int | None] = mapped_column(Integer)
    notify_last_error: Mapped[str | None] = mapped_column(Text)
    notified_at: Mapped[datetime | None]
    # Retention: when the finished job's items were deleted (its row and counts stay).
    items_pruned_at: Mapped[datetime | None]
    # SHA-256 of the request (fields and rows, normalised): what its idempotency key was used for.
    request_digest: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index(
            "uq_jobs_submitted_by_idempotency_key",
            "submitted_by",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        Index("ix_jobs_status_id", "status", "id"),
        Index("ix_jobs_submitted_by_id", "submitted_by", "id"),
        # A job's children (its retries, reverts, runs of a dry run), for its page.
        Index(
            "ix_jobs_parent_job_id",
            "parent_job_id",
            postgresql_where=text("parent_job_id IS NOT NULL"),
        ),
        # The notification outbox: finished jobs whose callback has not been delivered.
        Index(
            "ix_jobs_finished_at_undelivered",
            "finished_at",
            postgresql_where=text("callback_url IS NOT NULL AND notified_at IS NULL"),
        ),
        # Retention: finished jobs whose items are still there, oldest first.
        Index(
            "ix_jobs_finished_at_unpruned",
            "finished_at",
            postgresql_where=text("finished_at IS NOT NULL AND items_pruned_at IS NULL"),
        ),
    )


class Chunk(Base):
    __tablename__ = "chunks"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("jobs.id", ondelete="CASCADE"))
    line_item_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(32))
    n_items: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_expires_at: Mapped[datetime | None]
    not_before: Mapped[datetime | None]
    dispatched_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    api_calls: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(server_default=NOW)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("job_id", "line_item_id"),
        # Pending work: what beat scans and what decides who may write a line item next.
        Index(
            "ix_chunks_line_item_id_id_active",
            "line_item_id",
            "id",
            postgresql_where=text("status IN ('queued', 'running', 'parked')"),
        ),
        Index(
            "ix_chunks_status_not_before_active",
            "status",
            "not_before",
            postgresql_where=text("status IN ('queued', 'running', 'parked')"),
        ),
    )


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(BigInteger)
    line_item_id: Mapped[int] = mapped_column(BigInteger)
    row_number: Mapped[int] = mapped_column(Integer)
    sku_id: Mapped[str] = mapped_column(String(500))
    account_id: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(16))
    desired_bid: Mapped[Decimal | None] = mapped_column(BID)
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    error_kind: Mapped[str | None] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(200))
    error_message: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    bid_before: Mapped[Decimal | None] = mapped_column(BID)
    bid_after: Mapped[Decimal | None] = mapped_column(BID)
    product_status_before: Mapped[str | None] = mapped_column(String(16))
    product_status_after: Mapped[str | None] = mapped_column(String(16))
    trace_id: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=NOW)
    finished_at: Mapped[datetime | None]

    __table_args__ = (
        # A chunk's items, and the duplicate check at submission.
        Index("ix_items_job_id_line_item_id_sku_id", "job_id", "line_item_id", "sku_id"),
        # "The failed items of job X" (and any status filter), in input order.
        Index("ix_items_job_id_status_row_number", "job_id", "status", "row_number"),
        # A (line item, SKU)'s history across jobs, newest job first (a SKU appears at most once
        # per job, so the job id is a keyset); also "SKU S of job J" (sku_id = S, job_id = J
        # checked inside the index over that SKU's few entries).
        Index("ix_items_sku_id_line_item_id_job_id", "sku_id", "line_item_id", "job_id"),
        # Room on each page for the in-place (HOT) update of an item's attempt counter.
        {"postgresql_with": {"fillfactor": 80}},
    )


class RefusalFact(Base):
    """What the API taught by refusing a change (see `worker.domain.facts`), until it expires."""

    __tablename__ = "refusal_facts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    line_item_id: Mapped[int] = mapped_column(BigInteger)
    account_id: Mapped[str | None] = mapped_column(String(100))
    sku_id: Mapped[str | None] = mapped_column(String(500))
    min_bid: Mapped[Decimal | None] = mapped_column(BID)
    refused_bid: Mapped[Decimal | None] = mapped_column(BID)
    action: Mapped[str | None] = mapped_column(String(16))
    bid: Mapped[Decimal | None] = mapped_column(BID)
    error_code: Mapped[str | None] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(Text)
    job_id: Mapped[int] = mapped_column(BigInteger)
    trace_id: Mapped[str | None] = mapped_column(String(200))
    observed_at: Mapped[datetime] = mapped_column(server_default=NOW)
    expires_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_refusal_facts_line_item_id_sku_id", "line_item_id", "sku_id"),
        Index(
            "ix_refusal_facts_account_id_sku_id",
            "account_id",
            "sku_id",
            postgresql_where=text("account_id IS NOT NULL"),
        ),
        Index("ix_refusal_facts_expires_at", "expires_at"),
    )


class ApiKey(Base):
    """An HTTP API key: only its SHA-256 is stored; `name` is the submitter recorded on jobs."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    role: Mapped[str] = mapped_column(String(16), server_default="operate")
    created_at: Mapped[datetime] = mapped_column(server_default=NOW)
    revoked_at: Mapped[datetime | None]
