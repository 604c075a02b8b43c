"""Following a job, as a person at a terminal sees it (issue 14, points 4 and 5): a job with no
worker says so and why it waits, `doctor` says the same; the live display fits 80 and 40
columns with its counts; a cancelled job does not end on a full bar at a rate; Ctrl-C on --wait
says the job goes on; `watch --json` lines carry the rate and ETA, `status --json` the ETA."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import until
from tests.e2e.conftest import Stack
from tests.terminal import Terminal
from worker.sample import sample_rows, write_csv
from worker.simulator.scenario import generate

pytestmark = pytest.mark.e2e

PROMOBULK = str(Path(sys.executable).parent / "promobulk")
PROGRESS = re.compile(r"(\d+)/(\d+)")


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    opened: list[Terminal] = []
    yield opened
    for terminal in opened:
        terminal.close()


def open_terminal(terminals: list[Terminal], stack: Stack, columns: int, *args: str) -> Terminal:
    terminal = Terminal([PROMOBULK, *args], stack.env, columns=columns, cwd=stack.tmp)
    terminals.append(terminal)
    return terminal


def progress_lines(frame: list[str], job_id: int) -> list[str]:
    """The display's lines: from the job's line to the counts (the table after it excluded)."""
    start = next(n for n, line in enumerate(frame) if line.startswith(f"job {job_id} "))
    return frame[start : start + 6]


def last_shown(terminal: Terminal, job_id: int, status: str) -> list[str]:
    """The display's lines in the last frame that shows the job in this status (the tables
    printed after the display may scroll it away later)."""
    for frame in reversed(terminal.frames):
        if any(line.startswith(f"job {job_id} {status}") for line in frame):
            return progress_lines(frame, job_id)
    raise AssertionError(f"job {job_id} never shown {status}:\n{terminal.text()}")


def test_a_waiting_job_says_why_and_the_display_fits_80_and_40_columns(
    stack: Stack, tmp_path: Path, terminals: list[Terminal]
) -> None:
    scenario = generate(seed=111, line_items=10, skus_per_line_item=20)
    stack.control.load(scenario)
    stack.set_rate(600)
    rows = sample_rows(scenario, seed=111)
    first = stack.submit(write_csv(rows, tmp_path / "first.csv"))  # no worker yet

    doctor = stack.cli("doctor", "--json")
    assert doctor.returncode == 7
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["workers"]["verdict"] == "fail"
    assert "promobulk worker" in checks["workers"]["fix"]
    assert checks["queue"]["verdict"] == "warn"

    # The same line items again: behind the first job, and no worker to take either.
    second_rows = sample_rows(scenario, seed=112)
    second_csv = write_csv(second_rows, tmp_path / "second.csv")
    wide = open_terminal(terminals, stack, 80, "submit", str(second_csv), "--wait")
    screen = wide.wait_for("no worker is taking jobs", timeout=40)
    assert f"behind job {first} (line item" in screen
    second = int(re.search(r"job (\d+): ", screen).group(1))  # type: ignore[union-attr]
    streamed = subprocess.Popen(
        [PROMOBULK, "watch", str(second), "--json"],
        env=stack.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: list[dict[str, Any]] = []
    reader = threading.Thread(target=lambda: lines.extend(map(json.loads, streamed.stdout or ())))
    reader.start()
    narrow = open_terminal(terminals, stack, 40, "watch", str(second))
    narrow.wait_for("no worker is taking jobs", timeout=40)
    until(lambda: any(x["waiting"] for x in lines), 30, "why it waits, in JSON")

    stack.start_worker()
    assert wide.wait(120) == 3  # finished, with the SKUs the API refuses failed
    assert narrow.wait(60) == 3
    assert streamed.wait(60) == 3
    reader.join(10)
    assert streamed.stdout is not None
    streamed.stdout.close()

    for terminal, width in ((wide, 80), (narrow, 40)):
        moving = [f for f in terminal.frames if any(f"job {second} running" in x for x in f)]
        assert moving, f"no frame running at {width} columns: {terminal.frames[-5:]}"
        ended = last_shown(terminal, second, "completed_with_failures")
        for shown in [progress_lines(f, second) for f in moving[-3:]] + [ended]:
            text = " ".join(shown)
            assert "…" not in text, shown  # nothing cut to fit
            assert PROGRESS.search(text), shown
            assert "SKU/s" in text, shown
            assert "ETA" in text or "took" in text, shown
            assert re.search(r"succeeded [\d,]+", text), shown
        done, total = map(int, PROGRESS.search(" ".join(ended)).groups())  # type: ignore[union-attr]
        assert done == total == len(second_rows)

    # watch --json: a line per change, each with the server's ETA floor, the observed rate
    # and ETA, and why it waited while it did.
    fields = {"eta_seconds", "rate_per_second", "observed_eta_seconds", "waiting"}
    assert all(fields <= set(line) for line in lines)
    assert any(x["waiting"] and "no worker is taking jobs" in x["waiting"] for x in lines)
    assert any(x["rate_per_second"] for x in lines)
    assert lines[-1]["status"] == "completed_with_failures"
    status = json.loads(stack.cli("status", str(first), "--json").stdout)
    assert "eta_seconds" in status


def test_ctrl_c_on_wait_leaves_the_job_running_and_a_cancelled_job_ends_where_it_stopped(
    stack: Stack, tmp_path: Path, terminals: list[Terminal]
) -> None:
    scenario = generate(seed=121, line_items=40, skus_per_line_item=20)
    stack.control.load(scenario)
    stack.set_rate(120)  # slow: the job is still running when it is cancelled
    stack.start_worker()
    csv_path = write_csv(sample_rows(scenario, seed=121), tmp_path / "job.csv")
    waiting = open_terminal(terminals, stack, 80, "submit", str(csv_path), "--wait")
    screen = waiting.wait_for(" running ", timeout=60)
    job_id = int(re.search(r"job (\d+): ", screen).group(1))  # type: ignore[union-attr]
    waiting.interrupt()
    assert waiting.wait(30) == 130
    said = waiting.text()
    assert f"stopped watching; job {job_id} goes on" in said
    assert f"promobulk watch {job_id}" in said
    assert json.loads(stack.cli("status", str(job_id), "--json").stdout)["status"] == "running"

    watching = open_terminal(terminals, stack, 80, "watch", str(job_id))
    until(lambda: json.loads(stack.cli("status", str(job_id), "--json").stdout)["done"] > 50, 60)
    stack.cli("cancel", str(job_id), check=True)
    assert watching.wait(60) == 4  # cancelled
    final = last_shown(watching, job_id, "cancelled")
    text = " ".join(final)
    assert f"job {job_id} cancelled" in text
    done, total = map(int, PROGRESS.search(text).groups())  # type: ignore[union-attr]
    assert 0 < done < total, final  # not a full bar
    assert "SKU/s" not in text, final  # and no rate
    assert re.search(r"cancelled [\d,]+", text), final
