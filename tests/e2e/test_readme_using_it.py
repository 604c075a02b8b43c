"""The README's "Using it", followed literally (issue 14, point 2): its commands extracted and
run in order, in a shell, against `promobulk up --simulator` in a fresh state folder, each ending
with the exit code its comment gives (0 when it gives none)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.conftest import User, start_up

pytestmark = pytest.mark.e2e

README = (Path(__file__).parents[2] / "README.md").read_text()
SECTION = README.split("\n## Using it\n", 1)[1].split("\nTo run the parts yourself", 1)[0]
BLOCKS = re.findall(r"```bash\n(.*?)```", SECTION, re.S)
EXPECTED_EXIT = re.compile(r"\(exit (\d+)")


def commands(block: str) -> list[tuple[str, int]]:
    """Each command (a here-document with its lines) and the exit code its comment gives."""
    found: list[tuple[str, int]] = []
    lines = iter(block.splitlines())
    for line in lines:
        command = line
        if "<<'EOF'" in line:
            for more in lines:
                command += "\n" + more
                if more == "EOF":
                    break
        comment = line.partition("  #")[2]
        code = EXPECTED_EXIT.search(comment)
        found.append((command, int(code.group(1)) if code else 0))
    return found


def script(block: str, port: int) -> str:
    """The block as one shell script that stops at the first command ending otherwise."""
    steps = []
    for n, (command, code) in enumerate(
        commands(block.replace("127.0.0.1:8000", f"127.0.0.1:{port}")), 1
    ):
        steps.append(command)
        steps.append(
            f'got=$?; [ "$got" = {code} ] || {{ echo "command {n} ended $got, not {code}" >&2;'
            " exit 99; }"
        )
    return "\n".join(steps) + "\n"


def test_the_readme_blocks_are_the_setup_up_and_a_walkthrough() -> None:
    setup, up, walkthrough = BLOCKS
    assert setup.split() == ["scripts/setup", "source", ".venv/bin/activate"]
    assert up.startswith("promobulk up --simulator ")
    assert len(commands(walkthrough)) >= 12
    assert "promobulk cancel" in walkthrough


def test_the_walkthrough_runs_as_written(user: User) -> None:
    port = free_port()
    start_up(user, port, rate=None)  # `promobulk up --simulator`, as the README says
    env = {**user.env, "PATH": f"{Path(sys.executable).parent}:{user.env.get('PATH', '')}"}
    result = subprocess.run(
        ["bash", "-c", script(BLOCKS[2], port)],
        env=env,
        cwd=user.folder,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    assert "would change" in result.stdout  # the dry run's table
    failed = (user.folder / "failed.csv").read_text().splitlines()
    assert len(failed) == 2  # the header, and the bid a preferred-deals line item refuses
    assert "bid-override-not-allowed" in failed[1]
    assert user.json("status", "4")["status"] == "succeeded"  # the revert
    assert user.json("status", "5")["status"] == "cancelled"
    assert '"openapi"' in result.stdout
