"""What a chunk's run is given (the engine, an API client, the settings, how to dispatch and
notify), what it answers, and the two signals that stop it at a safe point."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from sqlalchemy import Engine

from worker.config import Settings
from worker.criteo.learned import WriteLimits
from worker.criteo.models import ProductState, ProductWrite, WriteResult
from worker.db.records import Dispatch
from worker.domain.enums import Priority


class ApiClient(Protocol):
    async def get_products(
        self,
        line_item_id: int,
        *,
        priority: Priority = ...,
        until: Collection[str] | None = ...,
    ) -> list[ProductState]: ...
    async def write_limits(self, action: str) -> WriteLimits: ...
    async def append_products(
        self, line_item_id: int, items: Sequence[ProductWrite], *, priority: Priority = ...
    ) -> WriteResult: ...
    async def delete_products(
        self, line_item_id: int, sku_ids: Sequence[str], *, priority: Priority = ...
    ) -> WriteResult: ...
    async def pause_products(
        self, line_item_id: int, sku_ids: Sequence[str], *, priority: Priority = ...
    ) -> WriteResult: ...
    async def unpause_products(
        self, line_item_id: int, sku_ids: Sequence[str], *, priority: Priority = ...
    ) -> WriteResult: ...


@dataclass
class RunnerDeps:
    engine: Engine
    client: ApiClient
    settings: Settings
    dispatch: Dispatch | None = None
    notify: Callable[[int], None] | None = None  # a job ended: send its completion notification
    stopping: Callable[[], bool] | None = None  # the worker is shutting down: release the chunk


class ChunkResult(StrEnum):
    DONE = "done"
    PARKED = "parked"
    NOT_CLAIMED = "not_claimed"
    LEASE_LOST = "lease_lost"
    RELEASED = "released"


class ReadBack(StrEnum):
    """When a bid is confirmed by reading the line item back after an append."""

    AMBIGUOUS = "ambiguous"
    ALWAYS = "always"


class Cancelled(Exception):
    """The job was cancelled: the runner stops at a safe point, between two calls."""


class Stopping(Exception):
    """The worker is shutting down: the runner hands the chunk back at a safe point."""
