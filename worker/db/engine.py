"""One engine per process, made lazily from the settings."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import Engine, create_engine

from worker.config import get_settings


def make_engine(url: str) -> Engine:
    # pool_pre_ping: a Postgres restart or failover costs one reconnect, not a failed chunk.
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


@lru_cache(maxsize=4)
def get_engine(url: str | None = None) -> Engine:
    return make_engine(url or get_settings().sqlalchemy_url)
