"""The entry point: every command module adds its commands to the one Typer app."""

from __future__ import annotations

import sys

from worker.cli import history, jobs, keys, ops, up  # noqa: F401  (each adds its commands)
from worker.cli.app import app, failed


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:  # every failure a command left unhandled, in words (see `failed`)
        sys.exit(failed(error))


__all__ = ["app", "main"]
