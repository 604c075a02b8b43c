"""The entry point: every command module adds its commands to the one Typer app."""

from __future__ import annotations

import sys

from worker.cli import history, jobs, keys, ops  # noqa: F401  (each adds its commands to `app`)
from worker.cli.app import app


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


__all__ = ["app", "main"]
