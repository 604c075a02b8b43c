"""Settings from the environment, read once per process.

Every knob the product has lives here so that the README's configuration table has one source.
Where a value comes from, first found first: the environment; a `.env` file in the current
folder; the stack a running `promobulk up` publishes (`worker.stackfile`: its servers, and its
simulator when it has one); the default.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any, ClassVar

from pydantic import Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from worker import stackfile


class RunningStack(PydanticBaseSettingsSource):
    """The settings of the stack `promobulk up` runs, while it runs."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything comes from __call__

    def __call__(self) -> dict[str, Any]:
        running = stackfile.read()
        return {} if running is None else dict(running.settings)


#: Above the 1,500 products suggested per line item since 2025-07: a full line item is one page,
#: and the last page of a server that gives no `meta.count` is a short one.
DEFAULT_PAGE_SIZE = 2000


class Settings(BaseSettings):
    # An empty variable means "not set" (docker compose passes unset ones through as empty).
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", populate_by_name=True, env_ignore_empty=True
    )

    # Whether a running `promobulk up`'s stack is a source (see `GivenSettings`).
    discover_stack: ClassVar[bool] = True

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        given = (init_settings, env_settings, dotenv_settings)
        return (*given, RunningStack(settings_cls)) if cls.discover_stack else given

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
    criteo_page_size: int = Field(
        default=DEFAULT_PAGE_SIZE,
        ge=1,
        alias="CRITEO_PAGE_SIZE",
        description="Products asked for per GET (a server that answers fewer is paged on).",
    )

    max_bid: Decimal = Field(
        default=Decimal("100"),
        ge=0,
        lt=Decimal(10) ** 10,  # a bid is stored as numeric(14, 4)
        alias="PROMOBULK_MAX_BID",
    )
    max_change_ratio: Decimal = Field(
        default=Decimal(3),
        ge=1,
        alias="PROMOBULK_MAX_CHANGE_RATIO",
        description="Guardrail: a new bid at most this many times the current one, either way.",
    )
    chunk_lease_seconds: int = Field(default=300, ge=5, alias="PROMOBULK_CHUNK_LEASE_SECONDS")
    sweep_interval_seconds: float = Field(
        default=15.0, gt=0, alias="PROMOBULK_SWEEP_INTERVAL_SECONDS"
    )
    redispatch_after_seconds: float = Field(
        default=900.0, gt=0, alias="PROMOBULK_REDISPATCH_AFTER_SECONDS"
    )
    chunk_max_attempts: int = Field(default=5, ge=1, alias="PROMOBULK_CHUNK_MAX_ATTEMPTS")
    chunk_park_base_seconds: float = Field(
        default=5.0, gt=0, alias="PROMOBULK_CHUNK_PARK_BASE_SECONDS"
    )
    chunk_park_max_seconds: float = Field(
        default=300.0, gt=0, alias="PROMOBULK_CHUNK_PARK_MAX_SECONDS"
    )
    task_time_limit: int = Field(default=1800, ge=30, alias="PROMOBULK_TASK_TIME_LIMIT")
    bid_readback: str = Field(
        default="ambiguous",
        pattern="^(ambiguous|always)$",
        alias="PROMOBULK_BID_READBACK",
        description="Read bids back: when the response proves nothing, or always.",
    )
    facts_ttl_hours: float = Field(
        default=24.0,
        gt=0,
        le=24 * 366,
        alias="PROMOBULK_FACTS_TTL_HOURS",
        description="How long what an API refusal taught (a SKU's minimum bid...) is used.",
    )

    # --- Criteo client tuning ---
    criteo_rate_limit_safety_margin: float = Field(
        default=0.02,
        ge=0,
        lt=0.5,
        alias="CRITEO_RATE_LIMIT_SAFETY_MARGIN",
        description="Share of the rate limit never used, against clock and network jitter.",
    )
    criteo_rate_limit_high_priority_share: float = Field(
        default=0.1,
        ge=0,
        lt=1,
        alias="CRITEO_RATE_LIMIT_HIGH_PRIORITY_SHARE",
        description="Share of the rate kept for high-priority jobs while any are running.",
    )
    criteo_rate_limit_max_wait_seconds: float = Field(
        default=30.0,
        gt=0,
        alias="CRITEO_RATE_LIMIT_MAX_WAIT_SECONDS",
        description="Longest wait for a rate-limit slot; beyond it the call fails as rate limited.",
    )
    criteo_retry_max_attempts: int = Field(default=5, ge=1, alias="CRITEO_RETRY_MAX_ATTEMPTS")
    criteo_retry_max_seconds: float = Field(
        default=90.0,
        gt=0,
        alias="CRITEO_RETRY_MAX_SECONDS",
        description="Time budget of one call's retries before it fails as transient.",
    )
    criteo_retry_base_delay: float = Field(default=0.5, gt=0, alias="CRITEO_RETRY_BASE_DELAY")
    criteo_retry_max_delay: float = Field(default=15.0, gt=0, alias="CRITEO_RETRY_MAX_DELAY")
    criteo_token_renew_before_seconds: float = Field(
        default=60.0,
        ge=0,
        alias="CRITEO_TOKEN_RENEW_BEFORE_SECONDS",
        description="Renew the access token this long before it expires.",
    )

    # --- HTTP API and notifications ---
    api_max_body_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024,
        alias="PROMOBULK_API_MAX_BODY_BYTES",
        description="Largest request body the HTTP API reads; larger ones get 413.",
    )
    webhook_secret: SecretStr = Field(
        default=SecretStr(""),
        alias="PROMOBULK_WEBHOOK_SECRET",
        description="Key of the HMAC-SHA256 signature on completion notifications.",
    )
    console_secret: SecretStr = Field(
        default=SecretStr(""),
        alias="PROMOBULK_CONSOLE_SECRET",
        description="Key of the console's session cookies and CSRF tokens; every API process"
        " behind one address must share it (unset: generated once into PROMOBULK_STATE_DIR).",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, alias="PROMOBULK_WEBHOOK_TIMEOUT_SECONDS"
    )
    webhook_max_attempts: int = Field(default=8, ge=1, alias="PROMOBULK_WEBHOOK_MAX_ATTEMPTS")
    webhook_retry_base_seconds: float = Field(
        default=10.0, gt=0, alias="PROMOBULK_WEBHOOK_RETRY_BASE_SECONDS"
    )
    webhook_retry_max_seconds: float = Field(
        default=1200.0, gt=0, alias="PROMOBULK_WEBHOOK_RETRY_MAX_SECONDS"
    )

    # --- Operations: logs, metrics, retention ---
    log_format: str = Field(
        default="json",
        pattern="^(json|console)$",
        alias="PROMOBULK_LOG_FORMAT",
        description="Log lines as JSON (one object a line) or for a human at a console.",
    )
    log_level: str | None = Field(
        default=None,
        pattern="^(?i:debug|info|warning|error|critical)$",
        alias="PROMOBULK_LOG_LEVEL",
        description="Log level; unset: INFO, or the --loglevel given to worker/beat.",
    )
    worker_metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        alias="PROMOBULK_WORKER_METRICS_PORT",
        description="Port of a worker's Prometheus /metrics (0: not served).",
    )
    retention_days: float = Field(
        default=30,
        ge=0,
        alias="PROMOBULK_RETENTION_DAYS",
        description="Items of jobs finished longer ago than this are pruned (0: kept forever).",
    )
    retention_batch_size: int = Field(default=5000, ge=1, alias="PROMOBULK_RETENTION_BATCH_SIZE")
    retention_interval_seconds: float = Field(
        default=3600, gt=0, alias="PROMOBULK_RETENTION_INTERVAL_SECONDS"
    )

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


class GivenSettings(Settings):
    """Only what the environment and `.env` say, for `promobulk up` to tell the servers it was
    given from those it must start (a running stack's are not given)."""

    discover_stack = False
