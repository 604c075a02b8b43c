"""Documents as tables for people: a job's outcomes, why SKUs failed, a page of jobs, keys, and
the steps of a stack starting and stopping."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from rich.console import Console
from rich.table import Table

from worker.jobs.documents import ApiKey, FailureGroup, ItemDocument, JobSummary

DRY_RUN_LABELS = {"succeeded": "would change", "failed": "would fail"}


OUTCOME_ORDER = ("succeeded", "unchanged", "failed", "cancelled", "pending")


def counts_text(job: JobSummary) -> str:
    """SKUs by outcome, the settled ones first, `pending` last."""
    labels = DRY_RUN_LABELS if job.dry_run else {}
    rank = {k: n for n, k in enumerate(OUTCOME_ORDER)}
    ordered = sorted(job.counts.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))
    return "  ".join(f"{labels.get(k, k)} {n:,}" for k, n in ordered)


def outcomes(job: JobSummary) -> Table:
    kind = "dry run" if job.dry_run else "job"
    table = Table(title=f"{kind} {job.id}: {job.status.value}", min_width=40)
    table.add_column("outcome")
    table.add_column("SKUs", justify="right")
    labels: Mapping[str, str] = DRY_RUN_LABELS if job.dry_run else {}
    for status, n in sorted(job.counts.items()):
        table.add_row(labels.get(status, status), str(n))
    table.add_row("[bold]total[/]", f"[bold]{job.total}[/]")
    return table


def failures(groups: Sequence[FailureGroup]) -> Table:
    table = Table(title="why SKUs failed", min_width=40)
    table.add_column("error kind")
    table.add_column("code", overflow="fold")
    table.add_column("SKUs", justify="right")
    table.add_column("example", overflow="fold", max_width=70)
    for group in groups:
        table.add_row(group.error_kind, group.error_code or "", str(group.count), group.example)
    return table


def job_list(jobs: Sequence[JobSummary]) -> Table:
    table = Table(min_width=60)
    for column in ("id", "status", "by", "SKUs", "done", "failed", "from", "created"):
        table.add_column(column, justify="right" if column in ("id", "SKUs", "done") else "left")
    for job in jobs:
        origin = f"{job.derived_reason} of {job.parent_job_id}" if job.parent_job_id else ""
        table.add_row(
            str(job.id),
            job.status.value + (" (dry run)" if job.dry_run else ""),
            job.submitted_by,
            str(job.total),
            str(job.done),
            str(job.counts.get("failed", 0)),
            origin,
            job.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    return table


def planned(items: Sequence[ItemDocument], total: int) -> Table:
    """A dry run's first SKUs and what would happen to them."""
    table = Table(title=f"first {len(items)} of {total} SKUs", min_width=60)
    for column in ("line item", "SKU", "action", "what would happen"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(item.line_item_id, item.sku_id, item.action.value, item.description)
    return table


def keys(records: Sequence[ApiKey]) -> Table:
    table = Table(title="API keys")
    for column in ("id", "name", "role", "starts with", "created", "revoked"):
        table.add_column(column)
    for k in records:
        revoked = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else ""
        created = k.created_at.isoformat(timespec="seconds")
        table.add_row(str(k.id), k.name, k.role.value, k.prefix + "…", created, revoked)
    return table


def step_reporter(out: Console) -> Callable[[str, str, float], None]:
    """Prints a stack's steps as they end (see `worker.stack.Report`): one aligned row each,
    the long ones folded within the terminal's width."""

    def report(step: str, what: str, seconds: float) -> None:
        row = Table.grid(padding=(0, 1), expand=True)
        row.add_column(min_width=10, style="bold")
        row.add_column(ratio=1, overflow="fold")
        row.add_column(justify="right", min_width=5, style="dim")
        row.add_row(step, what, f"{seconds:.1f}s" if seconds >= 0.05 else "")
        out.print(row, highlight=False)

    return report
