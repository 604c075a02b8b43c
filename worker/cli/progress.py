"""Following a job until it ends: the one progress display of `submit --wait`, `watch`,
`dry-run` and the demo, and its JSON form for scripts.

The display fits the terminal: at 70 columns and more, the bar with done/total, rate and ETA on
one line and the SKUs by outcome on the next; narrower, the same on four lines. The rate and ETA
are rich's own: each poll records a sample and rich estimates the speed over the last 30 s, so a
job already half done, or held back by the rate limit, shows its current pace; while there is no
pace yet, the ETA shown is the server's floor (`eta_seconds`). A job that makes no progress for a
while says why (`Stall`): no worker answering, behind which job, scheduled or parked until when.
A job that ends cancelled ends where it stopped, without a rate.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from rich.console import RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
)
from rich.table import Table
from rich.text import Text

from worker.cli import render
from worker.cli.app import EXIT_FOR_STATUS, Exit, console, err_console, print_json
from worker.domain.enums import JobStatus
from worker.jobs.documents import JobSummary, Waiting
from worker.jobs.service import Jobs

RATE_WINDOW_SECONDS = 30
WIDE_COLUMNS = 70  # narrower terminals get the four-line layout
STALL_SECONDS = 8.0  # no progress for this long: say why
STALL_CHECK_SECONDS = 5.0  # and look again this often


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=max(0, round(seconds))))


class RateColumn(ProgressColumn):
    """SKUs a second over rich's estimate window; none for a job that was cancelled."""

    def render(self, task: Task) -> Text:
        if task.fields["status"] == JobStatus.CANCELLED:
            return Text("cancelled", style="progress.data.speed")
        speed = task.finished_speed or task.speed
        shown = "-- SKU/s" if speed is None else f"{speed:,.1f} SKU/s"
        return Text(shown, style="progress.data.speed")


class EtaColumn(ProgressColumn):
    """Time left from the pace; before there is one, the server's floor; once ended, how long
    it took."""

    max_refresh = 0.5

    def render(self, task: Task) -> Text:
        if task.fields["ended"]:
            return Text(
                f"took {_clock(task.finished_time or task.elapsed or 0)}", "progress.elapsed"
            )
        if task.time_remaining is not None:
            return Text(f"ETA {_clock(task.time_remaining)}", "progress.remaining")
        floor = task.fields["floor"]
        return Text("ETA --" if floor is None else f"ETA ≥{_clock(floor)}", "progress.remaining")


def _grid(columns: Iterable[ProgressColumn], task: Task) -> Table:
    columns = tuple(columns)
    table = Table.grid(*(c.get_table_column().copy() for c in columns), padding=(0, 1), expand=True)
    table.add_row(*(column(task) for column in columns))
    return table


class JobProgress(Progress):
    """rich's progress, laid out in lines for the terminal's width, with the job's outcome
    counts and, when it waits, why."""

    def __init__(self) -> None:
        label = TextColumn("[bold]job {task.fields[job]}[/] {task.fields[status]}")
        bar = BarColumn(bar_width=None)
        done, rate, eta = MofNCompleteColumn(), RateColumn(), EtaColumn()
        self.wide = ((label, bar, done, rate, eta),)
        self.narrow = ((label,), (bar, TaskProgressColumn()), (done, rate, eta))
        super().__init__(console=console, speed_estimate_period=RATE_WINDOW_SECONDS)

    def get_renderables(self) -> Iterable[RenderableType]:
        lines = self.wide if console.width >= WIDE_COLUMNS else self.narrow
        for task in self.tasks:
            for columns in lines:
                yield _grid(columns, task)
            yield Text(task.fields["counts"], overflow="fold")
            if task.fields["note"]:
                yield Text(task.fields["note"], style="yellow", overflow="fold")


def explain(waiting: Waiting, workers: list[str] | None, now: datetime) -> str | None:
    """Why the job's chunks wait, in words; None when nothing waits."""
    parts = []
    if workers == []:
        parts.append(
            "no worker is taking jobs: start one with `promobulk worker`, or run `promobulk up`"
        )
    elif workers is None:
        parts.append("Redis cannot be reached: no worker can take jobs")
    elif waiting.ready and not waiting.running:
        parts.append(f"{waiting.ready} line item(s) ready, the workers busy with other jobs")
    if waiting.blockers:
        first = waiting.blockers[0]
        more = len(waiting.blockers) - 1
        parts.append(
            f"{waiting.behind} line item(s) behind job {first.job_id} (line item"
            f" {first.line_item_id}{f', and {more} more job(s)' if more else ''})"
        )
    if waiting.scheduled_until is not None:
        at = waiting.scheduled_until
        left = _clock((at - now).total_seconds())
        parts.append(f"scheduled: starts at {at.astimezone():%Y-%m-%d %H:%M} (in {left})")
    if waiting.parked_until is not None:
        until = waiting.parked_until.astimezone()
        why = f": {waiting.last_error[:120]}" if waiting.last_error else ""
        parts.append(
            f"{waiting.parked} parked until {until:%H:%M:%S} after transient failures{why}"
        )
    return "; ".join(parts) or None


class Stall:
    """Why a job makes no progress: looked for only once it has made none for STALL_SECONDS,
    then every STALL_CHECK_SECONDS (a Celery ping takes a second)."""

    def __init__(self, jobs: Jobs, job_id: int) -> None:
        self.jobs = jobs
        self.job_id = job_id
        self.done = -1
        self.moved = self.checked = time.monotonic()
        self.note: str | None = None

    def __call__(self, job: JobSummary) -> str | None:
        now = time.monotonic()
        if job.done != self.done or job.status in EXIT_FOR_STATUS:
            self.done, self.moved, self.note = job.done, now, None
        elif now - self.moved >= STALL_SECONDS and now - self.checked >= STALL_CHECK_SECONDS:
            self.checked = now
            self.note = explain(self.jobs.waiting(self.job_id), _workers(), datetime.now(UTC))
        return self.note


def _workers() -> list[str] | None:
    from worker.health import workers_answering
    from worker.tasks import app as celery

    return workers_answering(celery, 1.0)


class Pace:
    """SKUs a second over the last RATE_WINDOW_SECONDS, for the JSON lines."""

    def __init__(self) -> None:
        self.samples: deque[tuple[float, int]] = deque()

    def __call__(self, done: int) -> float | None:
        now = time.monotonic()
        self.samples.append((now, done))
        while now - self.samples[0][0] > RATE_WINDOW_SECONDS:
            self.samples.popleft()
        (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
        return None if t1 - t0 < 1 else round((d1 - d0) / (t1 - t0), 2)


def wait(
    jobs: Jobs, job_id: int, *, poll: float = 0.5, seen: Callable[[JobSummary], None] | None = None
) -> JobSummary:
    """Poll the job until it ends; `seen` gets every state on the way. Raises JobNotFound."""
    job = jobs.summary(job_id)
    while True:
        if seen is not None:
            seen(job)
        if job.status in EXIT_FOR_STATUS:
            return job
        time.sleep(poll)
        job = jobs.summary(job_id)


def follow(
    jobs: Jobs,
    job_id: int,
    *,
    as_json: bool = False,
    stream: bool = False,
    poll: float = 0.5,
) -> Exit:
    """Show progress until the job ends and return the exit code its status means. With
    `as_json`, print the final summary (`stream`: one JSON line per change, for `watch --json`).
    Ctrl-C stops following, not the job, and says so. Raises JobNotFound for no such job."""
    try:
        if as_json:
            return _follow_json(jobs, job_id, stream=stream, poll=poll)
        return _follow(jobs, job_id, poll)
    except KeyboardInterrupt:
        err_console.print(
            f"\nstopped watching; job {job_id} goes on. Follow it: promobulk watch {job_id};"
            f" stop it: promobulk cancel {job_id}",
            highlight=False,
        )
        return Exit.INTERRUPTED


def _follow(jobs: Jobs, job_id: int, poll: float) -> Exit:
    stall = Stall(jobs, job_id)
    with JobProgress() as progress:
        task = progress.add_task(
            "job", total=None, job=job_id, status="", counts="", note=None, ended=False, floor=None
        )

        def show(job: JobSummary) -> None:
            progress.update(
                task,
                total=job.total,
                # SKUs cancelled were not processed: a cancelled job does not end on a full bar.
                completed=job.done - job.counts.get("cancelled", 0),
                status=job.status.value,
                counts=render.counts_text(job),
                note=stall(job),
                ended=job.status in EXIT_FOR_STATUS,
                floor=job.eta_seconds,
            )

        wait(jobs, job_id, poll=poll, seen=show)
    document = jobs.get(job_id)
    console.print(render.outcomes(document))
    if document.failures:
        console.print(render.failures(document.failures))
    return EXIT_FOR_STATUS[document.status]


def _follow_json(jobs: Jobs, job_id: int, *, stream: bool, poll: float) -> Exit:
    """The job's summary with `rate_per_second` (observed), `observed_eta_seconds` and
    `waiting` (why it makes no progress) besides the server's `eta_seconds` floor."""
    last: list[dict[str, object]] = []
    pace, stall = Pace(), Stall(jobs, job_id)

    def line(job: JobSummary) -> None:
        rate = pace(job.done)
        left = job.total - job.done
        state = {**job.model_dump(mode="json"), "waiting": stall(job)}
        changed = {k: v for k, v in state.items() if k != "eta_seconds"}
        if not last or changed != last[-1]:
            eta = round(left / rate) if rate else None
            print_json({**state, "rate_per_second": rate, "observed_eta_seconds": eta})
            last[:] = [changed]

    job = wait(jobs, job_id, poll=poll, seen=line if stream else None)
    if not stream:
        print_json(job)
    return EXIT_FOR_STATUS[job.status]
