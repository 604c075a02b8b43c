"""Retention against the real database: which jobs lose their items, in batches, without a lock
that would hold up a running job, and what stays of a pruned job."""

from __future__ import annotations

import io
import random
import threading

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.jobs import make_jobs
from worker.db.items import ItemRepository
from worker.db.jobs import JobRepository
from worker.jobs.documents import JobFields
from worker.retention import prune_finished_jobs

HEADER = "line_item_id,sku_id,action,bid_override\n"


def _job(engine: sa.Engine, n_items: int) -> int:
    """A stored job of `n_items` SKUs on a line item no other test uses."""
    line_item = random.randint(10**15, 10**16)
    rows = "".join(f"{line_item},sku-{i},set_bid,0.5\n" for i in range(n_items))
    submitted = make_jobs(engine).submit_csv(io.StringIO(HEADER + rows), JobFields())
    return submitted.id


def _finish(engine: sa.Engine, job_id: int, days_ago: float | None) -> None:
    """The job as the runner leaves it, finished that many days ago (None: still running)."""
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE items SET status = 'succeeded', finished_at = now() WHERE job_id = :j"),
            {"j": job_id},
        )
        conn.execute(sa.text("UPDATE chunks SET status = 'done' WHERE job_id = :j"), {"j": job_id})
        if days_ago is None:
            conn.execute(sa.text("UPDATE jobs SET status = 'running' WHERE id = :j"), {"j": job_id})
            return
        conn.execute(
            sa.text(
                "UPDATE jobs SET status = 'succeeded', counts = jsonb_build_object('succeeded',"
                " total), finished_at = now() - make_interval(days => :d) WHERE id = :j"
            ),
            {"j": job_id, "d": days_ago},
        )


def _items(engine: sa.Engine, job_id: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM items WHERE job_id = :j"), {"j": job_id}
            ).scalar_one()
        )


def _pruned_at(engine: sa.Engine, job_id: int) -> object:
    with engine.connect() as conn:
        return conn.execute(
            sa.text("SELECT items_pruned_at FROM jobs WHERE id = :j"), {"j": job_id}
        ).scalar_one()


def test_only_items_of_jobs_finished_before_the_retention_are_pruned(engine: sa.Engine) -> None:
    old, old_small, recent, running = (_job(engine, n) for n in (25, 3, 10, 12))
    _finish(engine, old, days_ago=40)
    _finish(engine, old_small, days_ago=31)
    _finish(engine, recent, days_ago=10)
    _finish(engine, running, days_ago=None)

    pruned = prune_finished_jobs(engine, retention_days=30, batch_size=7)

    assert pruned.items >= 28
    assert pruned.jobs >= 2
    assert (_items(engine, old), _items(engine, old_small)) == (0, 0)
    assert (_items(engine, recent), _items(engine, running)) == (10, 12)
    assert _pruned_at(engine, old) is not None
    assert _pruned_at(engine, old_small) is not None
    assert _pruned_at(engine, recent) is None
    assert _pruned_at(engine, running) is None
    # The job stays, with its counts.
    with Session(engine) as session:
        view = JobRepository(session).record(old)
    assert view is not None
    assert (view.status, view.total, view.counts) == ("succeeded", 25, {"succeeded": 25})
    # A second run finds nothing left to do.
    assert prune_finished_jobs(engine, retention_days=30, batch_size=7).jobs == 0


def test_zero_days_keeps_everything(engine: sa.Engine) -> None:
    job = _job(engine, 4)
    _finish(engine, job, days_ago=4000)
    assert prune_finished_jobs(engine, retention_days=0, batch_size=7).items == 0
    assert _items(engine, job) == 4


def test_a_batch_deletes_at_most_its_size(engine: sa.Engine) -> None:
    job = _job(engine, 25)
    _finish(engine, job, days_ago=100)
    with Session(engine) as session:
        assert ItemRepository(session).delete_batch(job, 7) == 7
        session.commit()
    assert _items(engine, job) == 18
    prune_finished_jobs(engine, retention_days=30, batch_size=7)
    assert _items(engine, job) == 0


def test_pruning_takes_no_table_lock_a_running_job_would_wait_on(engine: sa.Engine) -> None:
    """A worker holds row locks on a running job's items; the prune must not wait on them (a
    LOCK TABLE or a delete of the whole table would), nor they on it."""
    old, running = _job(engine, 30), _job(engine, 5)
    _finish(engine, old, days_ago=60)
    _finish(engine, running, days_ago=None)
    with engine.connect() as worker:
        worker.execute(
            sa.text("SELECT id FROM items WHERE job_id = :j FOR UPDATE"), {"j": running}
        ).all()
        done = threading.Event()

        def prune() -> None:
            prune_finished_jobs(engine, retention_days=30, batch_size=4)
            done.set()

        thread = threading.Thread(target=prune)
        thread.start()
        assert done.wait(20), "the prune waited on a running job's locked items"
        # And the worker, still in its transaction, writes its items meanwhile.
        worker.execute(
            sa.text("UPDATE items SET attempts = attempts + 1 WHERE job_id = :j"), {"j": running}
        )
        worker.commit()
        thread.join(5)
    assert _items(engine, old) == 0
    assert _items(engine, running) == 5
