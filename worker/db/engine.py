"""One engine per process, made lazily from the settings."""

from __future__ import annotations

import logging
from datetime import datetime
from functools import lru_cache

import psycopg
from psycopg.types.datetime import TimestamptzBinaryLoader, TimestamptzLoader
from sqlalchemy import Engine, create_engine

from worker.config import get_settings

log = logging.getLogger("promobulk.db")


class _Lenient:
    """A stored time Python cannot hold (before year 1, after 9999) reads as None and a
    warning, instead of failing every query that lists its row. Input checks keep new ones
    out; this keeps one old row from taking a listing down."""

    def load(self, data: psycopg.abc.Buffer) -> datetime | None:
        try:
            return super().load(data)  # type: ignore[misc, no-any-return]
        except psycopg.DataError as out_of_range:
            log.warning("a stored time Python cannot hold was read as null: %s", out_of_range)
            return None


class _TextTime(_Lenient, TimestamptzLoader):  # type: ignore[misc]
    pass


class _BinaryTime(_Lenient, TimestamptzBinaryLoader):  # type: ignore[misc]
    pass


psycopg.adapters.register_loader("timestamptz", _TextTime)
psycopg.adapters.register_loader("timestamptz", _BinaryTime)


def make_engine(url: str) -> Engine:
    # pool_pre_ping: a Postgres restart or failover costs one reconnect, not a failed chunk.
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


@lru_cache(maxsize=4)
def get_engine(url: str | None = None) -> Engine:
    return make_engine(url or get_settings().sqlalchemy_url)
