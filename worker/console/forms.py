"""Query strings and forms into the documents `Jobs` takes; a bad value is a message for the
page, never a stored change."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from multidict import MultiMapping

from worker.domain.validation import OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from worker.jobs.documents import ItemQuery, JobFields, JobOptions, RetryRequest, parse
from worker.jobs.errors import InvalidField, InvalidQuery

ITEM_PAGE_SIZES = (50, 100, 500)
HEADER = ",".join((*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS))
MAX_TZ_MINUTES = 14 * 60


def text(values: Mapping[str, Any], name: str) -> str | None:
    """A field's text, stripped; None when absent or blank."""
    value = values.get(name)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _zone(values: Mapping[str, Any]) -> timezone:
    """The viewer's zone as the page's script reports it (minutes east of UTC); UTC without."""
    raw = text(values, "tz") or "0"
    try:
        minutes = int(raw)
    except ValueError:
        raise InvalidQuery("tz: must be minutes east of UTC") from None
    if abs(minutes) > MAX_TZ_MINUTES:
        raise InvalidQuery("tz: must be minutes east of UTC")
    return timezone(timedelta(minutes=minutes))


def _day(values: Mapping[str, Any], name: str, zone: timezone) -> datetime | None:
    raw = text(values, name)
    if raw is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(raw), time(0), tzinfo=zone)
    except ValueError:
        raise InvalidQuery(f"{name}: must be a date (YYYY-MM-DD)") from None


@dataclass(frozen=True)
class JobListFilters:
    status: str | None = None
    submitted_by: str | None = None
    created_from: str | None = None
    created_to: str | None = None
    dry_run: bool | None = None
    cursor: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)


def job_list_filters(query: Mapping[str, str]) -> JobListFilters:
    """The jobs page's filters; dates are whole days in the viewer's zone, `to` included."""
    zone = _zone(query)
    after = _day(query, "from", zone)
    until = _day(query, "to", zone)
    flag = text(query, "dry_run")
    if flag not in (None, "true", "false"):
        raise InvalidQuery("dry_run: must be true or false")
    dry_run = None if flag is None else flag == "true"
    return JobListFilters(
        status=text(query, "status"),
        submitted_by=text(query, "submitted_by"),
        created_from=text(query, "from"),
        created_to=text(query, "to"),
        dry_run=dry_run,
        cursor=text(query, "cursor"),
        arguments={
            "status": text(query, "status"),
            "submitted_by": text(query, "submitted_by"),
            "cursor": text(query, "cursor"),
            "created_after": after,
            "created_before": None if until is None else until + timedelta(days=1),
            "dry_run": dry_run,
        },
    )


def item_query(query: Mapping[str, str]) -> ItemQuery:
    fields: dict[str, Any] = {
        name: text(query, name) for name in ItemQuery.model_fields if text(query, name) is not None
    }
    if "line_item_id" in fields:
        raw = fields["line_item_id"]
        if not (raw.isascii() and raw.isdigit()):
            raise InvalidQuery("line item: must be a number")
        fields["line_item_id"] = int(raw)
    return parse(ItemQuery, fields)


def page_size(query: Mapping[str, str]) -> int:
    raw = text(query, "limit")
    return int(raw) if raw in {str(n) for n in ITEM_PAGE_SIZES} else ITEM_PAGE_SIZES[0]


def _options(form: Mapping[str, Any], prefix: str = "options") -> dict[str, Any]:
    """Guardrail, read and prediction settings given in the form; what is left blank is left
    unset."""
    options: dict[str, Any] = {}
    if form.get("guardrails_off") == "on":
        options["guardrails"] = False
    for name in ("max_bid", "max_change_ratio"):
        if (value := text(form, name)) is not None:
            options[name] = value
    if form.get("skip_read") == "on":
        options["skip_read"] = True
    if form.get("predict_off") == "on":
        options["predict"] = False
    if form.get("clamp_to_min_bid") == "on":
        options["clamp_to_min_bid"] = True
    return options


def retry_request(form: MultiMapping[Any]) -> RetryRequest:
    kinds = [k for k in form.getall("error_kind", []) if isinstance(k, str) and k]
    options = _options(form)
    return parse(
        RetryRequest,
        {
            "error_kinds": kinds or None,
            "options": parse(JobOptions, options, "options") if options else None,
            "idempotency_key": text(form, "idempotency_key"),
        },
    )


def job_fields(form: Mapping[str, Any]) -> JobFields:
    """The new-job form's fields: priority, dry run, options, a start time in the viewer's
    zone (`not_before`, from a datetime-local input and the page's `tz`)."""
    data: dict[str, Any] = {
        "priority": text(form, "priority") or "normal",
        "dry_run": form.get("dry_run") == "on",
        "options": parse(JobOptions, _options(form), "options"),
    }
    if (start := text(form, "not_before")) is not None:
        try:
            naive = datetime.fromisoformat(start)
        except ValueError:
            raise InvalidField("not_before", "must be a date and time") from None
        data["not_before"] = naive.replace(tzinfo=_zone(form)) if naive.tzinfo is None else naive
    return parse(JobFields, data)


def pasted_csv(pasted: str) -> str:
    """Pasted rows as the CSV that submission reads: tab-separated cells (a spreadsheet's copy)
    become commas, and rows pasted without the header get it, so row 1 stays the first row."""
    lines = pasted.strip("\r\n").splitlines()
    if not lines:
        return HEADER + "\n"
    first = lines[0]
    if "\t" in first:  # a spreadsheet's copy: tab-separated cells
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for row in csv.reader(lines, delimiter="\t"):
            writer.writerow(row)
        lines = out.getvalue().splitlines()
    if not lines[0].strip().lower().startswith(REQUIRED_COLUMNS[0]):
        lines.insert(0, HEADER)
    return "\n".join(lines) + "\n"
