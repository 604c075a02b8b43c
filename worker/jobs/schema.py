"""The database schema, for the commands that create, migrate and check it."""

from __future__ import annotations

from worker.config import Settings
from worker.db import migrate


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Apply the migrations up to `revision` (idempotent)."""
    migrate.upgrade(settings.sqlalchemy_url, revision)


def check(settings: Settings) -> None:
    """Raise if the models and the migrations disagree."""
    migrate.check(settings.sqlalchemy_url)
