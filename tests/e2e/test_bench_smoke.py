"""`scripts/bench` in its smallest size, end to end: real processes, the simulator, every section
of the report. Numbers are not judged here (the report judges its targets); only that the
benchmark runs, its jobs did what they should, and the JSON and Markdown are complete."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from worker.bench.report import SECTIONS

pytestmark = pytest.mark.e2e


def test_bench_tiny_writes_every_section(tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = subprocess.run(
        [sys.executable, "-m", "worker.bench", "--tiny", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    (js,) = out.glob("*.json")
    (md,) = out.glob("*.md")
    results = json.loads(js.read_text())
    assert list(results) == list(SECTIONS)

    overnight = results["overnight"]
    assert overnight["run"]["status"] == "succeeded"
    assert overnight["skus_not_in_desired_state"] == 0
    for key in ("wall_seconds", "lower_bound_seconds", "achieved_vs_limit", "429s", "calls"):
        assert overnight[key] is not None, key
    assert overnight["minimum"]["calls"] > 0

    engine = results["engine"]
    assert [r["worker_processes"] for r in engine["runs"]] == [1, 1, 1, 2, 2, 2]
    for summary in engine["summary"]:
        figure = summary["skus_per_second_end_to_end"]
        assert figure["min"] <= figure["median"] <= figure["max"]
        assert len(figure["runs"]) == 3
        assert all(len(r["load_average_before"]) == 3 for r in figure["runs"])
    for run in engine["runs"]:
        assert run["status"] == "succeeded"
        assert run["chunk_p50_ms"] >= 0
        assert run["chunk_p99_ms"] >= run["chunk_p50_ms"]
    assert "by_component" in engine["profile"] or "skipped" in engine["profile"]

    sizes = [r["rows"] for r in results["scale"]["runs"]]
    assert len(sizes) == 2
    assert sizes[0] < sizes[1]
    for run in results["scale"]["runs"]:
        assert run["rows_per_second"] > 0
        assert len(run["ingestion"]["runs"]) == 3
        assert run["ingestion"]["min"] > 0
        assert run["submit_peak_rss_mb"] > 0
        assert run["worker_child_peak_rss_mb"] > 0
    assert "ingestion_profile" in results["scale"]

    peers = results["peers"]
    for key in ("docs_samples", "sdk_loop"):
        assert peers[key]["calls"] > 0
        assert peers[key]["skus_not_in_desired_state"] == 0
    assert (
        peers["docs_samples"]["calls_per_line_item"]
        == results["meta"]["sizes"]["skus_per_line_item"]
    )

    variants = results["economy"]["variants"]
    assert len(variants) == 4
    for variant in variants:
        assert variant["skus_not_in_desired_state"] == 0, variant
        assert variant["calls"] >= 1
        assert variant["minimum"] >= 1
        assert variant["counts"].get("failed", 0) >= 1, variant  # the refused SKUs
    console = results["console"]
    assert set(console["pages"]) >= {"job page", "SKUs: unchanged", "SKUs: one line item"}
    assert all(p["median_ms"] > 0 for p in console["pages"].values())
    assert console["items"] == max(r["rows"] for r in results["scale"]["runs"])

    assert len(results["targets"]) == 7
    assert all(isinstance(t["met"], bool) for t in results["targets"])
    text = md.read_text()
    for heading in ("## Targets", "## 1.", "## 2.", "## 3.", "## 4.", "## 5.", "## 6."):
        assert heading in text
    assert text.strip() in result.stdout
