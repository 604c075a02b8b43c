"""The CLI given files a careless pipeline writes: a clear refusal naming the row and field,
exit code 2, nothing stored, and never a traceback (issue 13)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.integration.api.conftest import table_counts

HEADER = "line_item_id,sku_id,action,bid_override\n"
PROMOBULK = str(Path(sys.executable).parent / "promobulk")


def submit(database_url: str, redis_url: str, path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url}
    return subprocess.run(
        [PROMOBULK, "submit", str(path), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("content", "row", "field", "words"),
    [
        ((HEADER + "7,a\x00b,pause,\n").encode(), 1, "sku_id", "NUL"),
        ((HEADER + "7,a,pause,\n7," + "x" * 200_000 + ",pause,\n").encode(), 2, "sku_id", "longer"),
        (
            (HEADER + "7,caf\u00e9,pause,\n").encode("latin-1"),
            1,
            "row",
            "line 2 of the file is not UTF-8",
        ),
        ((HEADER + "7,a,set_bid,0,57\n").encode(), 1, "row", "5 fields"),
        (b"line_item_id;sku_id;action;bid_override\n7;a;pause;\n", 0, "header", "semicolons"),
    ],
)
def test_a_bad_file_is_refused_in_words_with_exit_code_2(
    database_url: str,
    redis_url: str,
    engine: sa.Engine,
    tmp_path: Path,
    content: bytes,
    row: int,
    field: str,
    words: str,
) -> None:
    path = tmp_path / "night.csv"
    path.write_bytes(content)
    before = table_counts(engine)
    result = submit(database_url, redis_url, path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    refusal = json.loads(result.stdout)
    assert refusal["rejected"] is True
    [error] = refusal["errors"]
    assert (error["row"], error["field"]) == (row, field)
    assert words in error["reason"]
    assert table_counts(engine) == before
