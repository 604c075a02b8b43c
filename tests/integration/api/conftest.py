"""The HTTP API served for real: aiohttp on a free loopback port, the session's migrated
database, and the chunk runner against the simulator to give jobs real outcomes."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.orm import Session

from tests.jobs import make_jobs, settings_for
from worker.api import create_app
from worker.client import PromobulkClient
from worker.config import Settings
from worker.criteo.runtime import ClientRuntime
from worker.db.chunks import ChunkRepository
from worker.domain.enums import Priority
from worker.runner import RunnerDeps, run_chunk
from worker.simulator.scenario import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Scenario
from worker.simulator.server import RunningSimulator

_names = itertools.count(1)


@contextmanager
def serve(app: web.Application) -> Iterator[str]:
    """Run the app on a free port of 127.0.0.1 in a thread of its own; yields its base URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Api:
    url: str
    key: str
    submitter: str
    engine: sa.Engine
    dispatched: list[tuple[int, Priority]] = field(default_factory=list)

    @property
    def client(self) -> PromobulkClient:
        return PromobulkClient(self.url, self.key)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        key: str | None = "default",
    ) -> Reply:
        """One request; any status comes back as a Reply (nothing raises)."""
        sent = {"Content-Type": content_type, **(headers or {})}
        if key is not None:
            sent["Authorization"] = f"Bearer {self.key if key == 'default' else key}"
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = Request(self.url + path, data=data, method=method, headers=sent)
        try:
            with urlopen(request, timeout=30) as response:
                return Reply(response.status, dict(response.headers), response.read())
        except HTTPError as error:
            with error:
                return Reply(error.code, dict(error.headers), error.read())


@pytest.fixture(scope="session")
def _api_server(engine: sa.Engine) -> Iterator[tuple[str, list[tuple[int, Priority]]]]:
    dispatched: list[tuple[int, Priority]] = []
    with serve(create_app(make_jobs(engine, dispatched.extend))) as url:
        yield url, dispatched


@pytest.fixture
def api(_api_server: tuple[str, list[tuple[int, Priority]]], engine: sa.Engine) -> Iterator[Api]:
    """The served API with a key of its own for this test (its name: the submitter). The test's
    unfinished jobs are cancelled after it, so none holds a line item for the next test."""
    url, dispatched = _api_server
    dispatched.clear()
    name = f"tester-{next(_names)}-{uuid.uuid4().hex[:6]}"
    jobs = make_jobs(engine)
    yield Api(url, jobs.keys.create(name).key, name, engine, dispatched)
    for status in ("queued", "running"):
        for job in jobs.list_jobs(status=status, submitted_by=name, limit=500).jobs:
            jobs.cancel(job.id)


def table_counts(engine: sa.Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(
            conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
            for t in ("jobs", "chunks", "items")
        )


def runner_settings(simulator: RunningSimulator, redis_url: str) -> Settings:
    return settings_for(
        REDIS_URL=redis_url,
        CRITEO_API_URL=simulator.url,
        CRITEO_CLIENT_ID=DEFAULT_CLIENT_ID,
        CRITEO_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
        CRITEO_RATE_LIMIT_PER_MINUTE=100_000,
    )


def run_job(
    engine: sa.Engine,
    settings: Settings,
    job_id: int,
    notify: Callable[[int], None] | None = None,
) -> None:
    """Run every chunk of a job in this process, as a worker would, until none is left."""

    async def run() -> None:
        runtime = await ClientRuntime.open(settings)
        try:
            deps = RunnerDeps(engine, runtime.client, settings, notify=notify)
            while True:
                with Session(engine) as session:
                    chunks = ChunkRepository(session).runnable(job_id)
                    session.commit()
                if not chunks:
                    return
                for chunk_id, _ in chunks:
                    await run_chunk(deps, chunk_id)
        finally:
            await runtime.aclose()

    asyncio.run(run())


@pytest.fixture
def job_runner(
    simulator: RunningSimulator, redis_url: str, engine: sa.Engine
) -> Callable[[int], None]:
    """Runs a job's chunks to their end against the simulator (reset for this test)."""
    settings = runner_settings(simulator, redis_url)
    return lambda job_id: run_job(engine, settings, job_id)


def mixed_items(scenario: Scenario) -> tuple[list[dict[str, Any]], int]:
    """Items of the scenario's first line item: bids that succeed, and SKUs the API refuses
    (a bid below the SKU's minimum, a SKU not in the catalog). Returns them and how many fail."""
    account = scenario.accounts[0]
    line_item = account.line_items[0]
    minimum = {c.sku: c.minBid for c in account.catalog}
    items: list[dict[str, Any]] = [
        {
            "line_item_id": line_item.id,
            "sku_id": p.sku,
            "action": "set_bid",
            "bid_override": str(minimum[p.sku] + 1),
        }
        for p in line_item.products[:4]
    ]
    low = line_item.products[4].sku
    items.append(
        {
            "line_item_id": line_item.id,
            "sku_id": low,
            "action": "set_bid",
            "bid_override": str(minimum[low] / 2),
        }
    )
    items.append({"line_item_id": line_item.id, "sku_id": "no-such-sku", "action": "add"})
    return items, 2


def ids(items: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(i["sku_id"]) for i in items]
