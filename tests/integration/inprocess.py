"""Run a job's chunks with the real runner and API client in this process, against a simulator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import sqlalchemy as sa

from worker.config import Settings
from worker.criteo.runtime import ClientRuntime
from worker.runner import RunnerDeps, run_chunk
from worker.simulator.scenario import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

Run = Callable[..., int]  # submit a job (its fields as keywords), run it, return its id


def settings_for(api_url: str, redis_url: str, **extra: object) -> Settings:
    values: dict[str, object] = {
        "DATABASE_URL": "unused",
        "REDIS_URL": redis_url,
        "CRITEO_API_URL": api_url,
        "CRITEO_CLIENT_ID": DEFAULT_CLIENT_ID,
        "CRITEO_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "CRITEO_RATE_LIMIT_PER_MINUTE": 100_000,
        **extra,
    }
    return Settings(**values)  # type: ignore[arg-type]


def run_job(engine: sa.Engine, job_id: int, settings: Settings) -> None:
    """Every chunk of the job, in id order, until none is left to claim."""

    async def go() -> None:
        runtime = await ClientRuntime.open(settings)
        try:
            deps = RunnerDeps(engine, runtime.client, settings)
            for _ in range(10):
                with engine.connect() as conn:
                    ids = conn.execute(
                        sa.text(
                            "SELECT id FROM chunks WHERE job_id = :j"
                            " AND status IN ('queued', 'parked') ORDER BY id"
                        ),
                        {"j": job_id},
                    ).scalars()
                    pending = list(ids)
                if not pending:
                    return
                for chunk_id in pending:
                    await run_chunk(deps, chunk_id)
            raise AssertionError(f"job {job_id} still has chunks to run")
        finally:
            await runtime.aclose()

    asyncio.run(go())


def outcomes(engine: sa.Engine, job_id: int) -> dict[tuple[int, str], tuple[str, str | None]]:
    """(line item, SKU) → (outcome, error kind) of every item of the job."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT line_item_id, sku_id, status, error_kind FROM items WHERE job_id = :j"),
            {"j": job_id},
        ).all()
    return {(r.line_item_id, r.sku_id): (r.status, r.error_kind) for r in rows}
