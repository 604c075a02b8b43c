"""docker-compose.yml without a Docker engine: valid against the Compose Specification's schema
(vendored in tests/compose/, see SOURCE.md), accepted by `docker-compose config` where that is
installed, and complete: every service, health check, dependency and setting in place."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from worker.config import Settings

ROOT = Path(__file__).parents[3]
SCHEMA_FILE = ROOT / "tests" / "compose" / "compose_spec.json"
SCHEMA_SHA256 = "0dc04bd346dcfee1b1419628fff79937bbf076925f298f272a2b490e2b112bac"
LONG_RUNNING = {"postgres", "redis", "api", "worker", "beat", "flower", "simulator"}
SECRETS = (
    "CRITEO_CLIENT_SECRET",
    "PROMOBULK_WEBHOOK_SECRET",
    "PROMOBULK_CONSOLE_SECRET",
    "POSTGRES_PASSWORD",
)


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def validator() -> Any:
    assert hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest() == SCHEMA_SHA256
    return jsonschema_rs.validator_for(json.loads(SCHEMA_FILE.read_text()))


def test_the_compose_file_is_valid_against_the_compose_spec() -> None:
    check = validator()
    errors = [str(e) for e in check.iter_errors(compose())]
    assert not errors, errors
    # The schema does reject what is wrong: a misspelt key, a bad dependency condition.
    broken = copy.deepcopy(compose())
    broken["services"]["api"]["healthcheck"]["intervall"] = "5s"
    assert not check.is_valid(broken)
    broken = copy.deepcopy(compose())
    broken["services"]["api"]["depends_on"]["migrate"]["condition"] = "service_done"
    assert not check.is_valid(broken)


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker-compose", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_docker_compose_config_accepts_it_with_and_without_the_demo_profile() -> None:
    plain = _compose("config", "--services")
    assert plain.returncode == 0, plain.stderr
    # docker-compose 1.x lists profiled services too; Compose v2 leaves them out.
    assert LONG_RUNNING - {"simulator"} | {"migrate"} <= set(plain.stdout.split())
    demo = _compose("--env-file", ".env.demo", "config")
    assert demo.returncode == 0, demo.stderr
    resolved = yaml.safe_load(demo.stdout)
    assert "simulator" in resolved["services"]
    for name in ("api", "worker", "beat"):
        env = resolved["services"][name]["environment"]
        assert env["CRITEO_API_URL"] == "http://simulator:8080"
        assert env["CRITEO_CLIENT_ID"] == "promobulk-demo"


def test_every_service_is_there_with_health_checks_and_ordered_start() -> None:
    services = compose()["services"]
    assert set(services) == LONG_RUNNING | {"migrate"}
    for name in LONG_RUNNING:
        assert services[name]["healthcheck"]["test"], name
    assert services["migrate"]["command"] == ["promobulk", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("api", "worker", "beat", "flower"):
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name
    # Scalable: nothing that two copies of the worker could not share.
    assert not {"container_name", "ports", "hostname"} & set(services["worker"])
    assert services["simulator"]["profiles"] == ["demo"]
    assert "simulator" not in {s for svc in services.values() for s in svc.get("depends_on", {})}


def test_every_setting_is_in_the_environment_and_in_env_example() -> None:
    names = {f.alias for f in Settings.model_fields.values() if f.alias}
    services = compose()["services"]
    for name in ("api", "worker", "beat", "flower", "migrate"):
        missing = names - set(services[name]["environment"]) - {"PROMOBULK_WORKER_METRICS_PORT"}
        assert not missing, f"{name} does not pass {missing}"
    assert "PROMOBULK_WORKER_METRICS_PORT" in services["worker"]["environment"]
    example = (ROOT / ".env.example").read_text()
    lines = {
        line.lstrip("# ").split("=", 1)[0]: line.split("=", 1)[1]
        for line in example.splitlines()
        if "=" in line and line.lstrip("# ").split("=", 1)[0].isupper()
    }
    assert not names - set(lines), f"missing from .env.example: {names - set(lines)}"
    for secret in SECRETS:
        assert lines[secret] == "", f"{secret} must be blank in .env.example"


def test_the_image_is_slim_non_root_and_without_dev_dependencies() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = [line for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert all(line.startswith("FROM python:3.11-slim") for line in stages)
    user = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert user == ["promobulk"]
    assert "[dev]" not in dockerfile
    assert "pip install '.[flower]'" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", ".env", "tests"} <= set(ignored)
