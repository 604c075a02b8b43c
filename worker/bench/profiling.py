"""Where a worker's CPU goes: py-spy sampling a live worker process from outside (no code in
the worker changes), summarised by component and by function.

py-spy records only samples where the process is on the CPU (not idle), so shares are of the
worker's CPU time. It is attached with `--nonblocking` (the process is never paused).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Where promobulk's own modules live (to tell them from, e.g., celery/worker/).
PACKAGE = str(Path(__file__).resolve().parents[1]) + "/"
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")

# First non-stdlib frame from the leaf decides the component of a sample.
COMPONENTS = (
    ("sqlalchemy", "SQLAlchemy (ORM/Core)"),
    ("psycopg", "psycopg (Postgres driver)"),
    ("aiohttp", "aiohttp (HTTP client)"),
    ("yarl", "aiohttp (HTTP client)"),
    ("multidict", "aiohttp (HTTP client)"),
    ("redis", "redis-py (limiter, token)"),
    ("celery", "Celery/kombu"),
    ("kombu", "Celery/kombu"),
    ("billiard", "Celery/kombu"),
    ("pydantic", "pydantic"),
)
OURS = (
    ("criteo/", "promobulk: criteo client"),
    ("db/", "promobulk: repository"),
    ("domain/", "promobulk: domain (validation, planner)"),
    ("submission.py", "promobulk: submission"),
    ("runner.py", "promobulk: runner"),
    ("tasks.py", "promobulk: tasks"),
)


def _ours(file: str) -> str | None:
    """The path inside the promobulk package, or None for any other file."""
    if file.startswith(PACKAGE):
        return file[len(PACKAGE) :]
    if file.startswith("worker/"):  # py-spy names files relative to their sys.path entry
        return file[len("worker/") :]
    return None


def _inclusive(file: str) -> bool:
    """A promobulk frame worth listing: not the entry points, not the benchmark itself."""
    inside = _ours(file)
    return inside is not None and not inside.startswith(("cli.py", "__main__.py", "bench/"))


def _stdlib(file: str) -> bool:
    if file.startswith("<") or ("/lib/python3" in file and "site-packages" not in file):
        return True
    top = file.split("/", 1)[0].removesuffix(".py")
    return top in sys.stdlib_module_names


def py_spy() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


@dataclass
class Recording:
    process: subprocess.Popen[bytes]
    output: Path


def start(pid: int, output: Path, rate: int = 200) -> Recording | None:
    binary = py_spy()
    if binary is None:
        return None
    process = subprocess.Popen(  # noqa: S603
        [
            binary,
            "record",
            "--pid",
            str(pid),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return Recording(process, output)


def stop(recording: Recording) -> None:
    if recording.process.poll() is None:
        recording.process.send_signal(signal.SIGINT)
    try:
        recording.process.wait(30)
    except subprocess.TimeoutExpired:
        recording.process.kill()
        recording.process.wait(5)


def _component(frames: list[tuple[str, str]]) -> str:
    """The first frame from the leaf that is not the standard library names the component."""
    for _, file in reversed(frames):
        if file.startswith(("asyncio/", "selectors.py")):
            return "asyncio event loop (select, callbacks)"
        inside = _ours(file)
        if inside is not None:
            return next((name for p, name in OURS if inside.startswith(p)), "promobulk: other")
        if _stdlib(file):
            continue
        for needle, name in COMPONENTS:
            if f"/{needle}" in file or file.startswith(needle):
                return name
        return "other libraries"
    return "event loop, stdlib"


def _short(func: str, file: str) -> str:
    inside = _ours(file)
    if inside is not None:
        file = "worker/" + inside
    elif "site-packages/" in file:
        file = file.split("site-packages/", 1)[1]
    elif "/lib/python3" in file:
        file = "stdlib/" + file.rsplit("/", 1)[-1]
    return f"{func} ({file})"


def summarise(path: Path, top: int = 15) -> dict[str, Any]:
    """Shares of CPU samples: by component, by function (self), by promobulk function
    (inclusive)."""
    total = 0
    components: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    text = path.read_text() if path.exists() else ""
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = []
        for frame in stack.split(";"):
            match = _FRAME.match(frame.strip())
            if match:
                frames.append((match["func"], match["file"]))
        if not frames:
            continue
        total += count
        components[_component(frames)] += count
        self_time[_short(*frames[-1])] += count
        for name in {_short(f, file) for f, file in frames if _inclusive(file)}:
            inclusive[name] += count

    def shares(counter: Counter[str], n: int) -> list[dict[str, Any]]:
        return [
            {"name": name, "share": round(c / total, 4), "samples": c}
            for name, c in counter.most_common(n)
        ]

    return {
        "samples": total,
        "by_component": shares(components, 20),
        "top_self": shares(self_time, top),
        "top_inclusive_promobulk": shares(inclusive, top),
    }


# --- Postgres: server time per statement, attributed to the repository function that sends it


def _normalise(sql: str) -> str:
    sql = re.sub(r"\$\d+|%\(\w+\)s|(?<!:):(?!:)\w+", "?", sql)
    return re.sub(r"\s+", " ", sql).strip().lower()


def _sql_owners() -> list[tuple[str, str]]:
    """(normalised statement start, owner) for every SQL string of the repositories
    (worker/db/*.py)."""
    import ast

    from worker import db

    classes = [
        node
        for module in sorted(Path(db.__file__).parent.glob("*.py"))
        for node in ast.parse(module.read_text()).body
        if isinstance(node, ast.ClassDef)
    ]
    owners: list[tuple[str, str]] = []
    for cls in classes:
        for fn in cls.body:
            if not isinstance(fn, ast.FunctionDef):
                continue
            for node in ast.walk(fn):
                text = None
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    text = node.value
                elif isinstance(node, ast.JoinedStr) and node.values:
                    first = node.values[0]
                    if isinstance(first, ast.Constant) and isinstance(first.value, str):
                        text = first.value
                if text and len(text.strip()) > 15:
                    sql = _normalise(text)
                    words = " ".join(sql.split(" ")[:5])
                    owners.append((sql[:120], f"{cls.name}.{fn.name}: {words}"))
    return owners


def statements(entries: list[tuple[float, str, str]], top: int = 15) -> dict[str, Any]:
    """Server time per repository function (parse + bind + execute), most expensive first."""
    owners = sorted(_sql_owners(), key=lambda o: -len(o[0]))
    time_ms: dict[str, float] = {}
    executions: Counter[str] = Counter()
    for ms, step, sql in entries:
        text = _normalise(sql)
        if text.split(" ", 1)[0] in ("begin", "commit", "rollback"):
            owner = "BEGIN / COMMIT / ROLLBACK"
        else:
            owner = next((o for prefix, o in owners if text.startswith(prefix)), text[:60])
        time_ms[owner] = time_ms.get(owner, 0.0) + ms
        if step in ("statement", "execute"):
            executions[owner] += 1
    total = sum(time_ms.values())
    return {
        "total_ms": round(total, 1),
        "statements": sum(executions.values()),
        "by_function": [
            {
                "name": name,
                "ms": round(ms, 1),
                "share": round(ms / total, 4) if total else 0.0,
                "executions": executions[name],
                "ms_each": round(ms / executions[name], 3) if executions[name] else None,
            }
            for name, ms in sorted(time_ms.items(), key=lambda kv: -kv[1])[:top]
        ],
    }
