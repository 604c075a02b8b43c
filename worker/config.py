"""Settings from the environment, read once per process.

Every knob the product has lives here so that the README's configuration table has one source.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    database_url: str = Field(
        default="postgresql+psycopg://postgres@127.0.0.1:5432/promobulk",
        alias="DATABASE_URL",
    )
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", alias="REDIS_URL")
    broker_url: str | None = Field(
        default=None,
        alias="CELERY_BROKER_URL",
        description="Celery broker; REDIS_URL when unset.",
    )

    criteo_api_url: str = Field(default="https://api.criteo.com", alias="CRITEO_API_URL")
    criteo_api_version: str = Field(default="2026-07", alias="CRITEO_API_VERSION")
    criteo_client_id: str = Field(default="", alias="CRITEO_CLIENT_ID")
    criteo_client_secret: SecretStr = Field(default=SecretStr(""), alias="CRITEO_CLIENT_SECRET")
    criteo_rate_limit_per_minute: int = Field(
        default=250, ge=1, alias="CRITEO_RATE_LIMIT_PER_MINUTE"
    )
    criteo_request_timeout: float = Field(default=30.0, gt=0, alias="CRITEO_REQUEST_TIMEOUT")

    max_bid: Decimal = Field(default=Decimal("100"), ge=0, alias="PROMOBULK_MAX_BID")
    chunk_lease_seconds: int = Field(default=900, ge=10, alias="PROMOBULK_CHUNK_LEASE_SECONDS")
    chunk_max_attempts: int = Field(default=5, ge=1, alias="PROMOBULK_CHUNK_MAX_ATTEMPTS")
    task_time_limit: int = Field(default=1800, ge=30, alias="PROMOBULK_TASK_TIME_LIMIT")

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def sqlalchemy_url(self) -> str:
        """DATABASE_URL with the psycopg 3 driver, whatever scheme the user wrote."""
        url = self.database_url
        for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
