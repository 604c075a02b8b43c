"""Alembic driven from code, so `promobulk db upgrade` and the tests share one path."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config

from worker.config import get_settings

_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(url: str | None = None) -> Config:
    ini = Path(os.environ.get("PROMOBULK_ALEMBIC_INI", _ROOT / "alembic.ini"))
    cfg = Config(str(ini))
    cfg.set_main_option("sqlalchemy.url", (url or get_settings().sqlalchemy_url).replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def check(url: str | None = None) -> None:
    """Raise if the models and the migrations disagree (alembic check)."""
    command.check(alembic_config(url))
