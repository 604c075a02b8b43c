"""Following a job until it ends: the one progress display of `submit --wait`, `watch`,
`dry-run` and the demo, and its JSON form for scripts.

The rate and the time left are rich's own: each update records a sample and rich estimates the
speed over the last 30 s, so watching a job already half done, or one held back by the rate
limit, shows its current pace and an honest ETA.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from worker.cli import render
from worker.cli.app import EXIT_FOR_STATUS, Exit, console, print_json
from worker.jobs.documents import JobSummary
from worker.jobs.service import Jobs

RATE_WINDOW_SECONDS = 30


class RateColumn(ProgressColumn):
    """SKUs a second over rich's estimate window."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(
            "-- SKU/s" if speed is None else f"{speed:,.1f} SKU/s", style="progress.data.speed"
        )


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
    Raises JobNotFound for no such job."""
    if as_json:
        return _follow_json(jobs, job_id, stream=stream, poll=poll)
    columns = (
        TextColumn("[bold]job {task.fields[job]}[/] {task.fields[status]}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[counts]}"),
    )
    with Progress(*columns, console=console, speed_estimate_period=RATE_WINDOW_SECONDS) as progress:
        task = progress.add_task("job", total=None, job=job_id, status="", counts="")

        def show(job: JobSummary) -> None:
            progress.update(
                task,
                total=job.total,
                completed=job.done,
                status=job.status.value,
                counts=render.counts_text(job),
            )

        wait(jobs, job_id, poll=poll, seen=show)
    document = jobs.get(job_id)
    console.print(render.outcomes(document))
    if document.failures:
        console.print(render.failures(document.failures))
    return EXIT_FOR_STATUS[document.status]


def _follow_json(jobs: Jobs, job_id: int, *, stream: bool, poll: float) -> Exit:
    last: list[dict[str, object]] = []

    def line(job: JobSummary) -> None:
        state = job.model_dump(exclude={"eta_seconds"})
        if not last or state != last[-1]:
            print_json(job)
            last[:] = [state]

    job = wait(jobs, job_id, poll=poll, seen=line if stream else None)
    if not stream:
        print_json(job)
    return EXIT_FOR_STATUS[job.status]
