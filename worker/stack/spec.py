"""What is asked of a stack (`StackSpec`), what it answers once started (`Started`), and how
it fails or is stopped while starting."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Report = Callable[[str, str, float], None]  # step, what happened, seconds it took


@dataclass(frozen=True)
class SimulatorSpec:
    scenario: Path  # served at the first start (at every start unless `keep_state`)
    rate_limit: int  # the simulator's limit, and the workers' setting
    keep_state: bool = False  # saved when the stack stops, served again when it starts


@dataclass(frozen=True)
class StackSpec:
    state_dir: Path
    workers: int = 2  # prefork processes of the stack's Celery worker
    api: tuple[str, int] | None = None  # host and port of `promobulk api`
    simulator: SimulatorSpec | None = None
    database_url: str | None = None  # a server of one's own; None: embedded
    redis_url: str | None = None
    publish: bool = False  # write stack.json for other shells
    grace_seconds: float = 30.0  # how long stopping workers may take before they are killed


@dataclass(frozen=True)
class Started:
    state_dir: Path
    logs: Path
    database_url: str
    redis_url: str
    api_url: str | None
    simulator_url: str | None
    requeued: int  # chunks a killed predecessor left running, queued again


class Interrupted(Exception):
    """A stop was asked for while the stack was starting."""


class StackFailed(Exception):
    """A part of the stack would not start or stopped for good; the message says which."""
