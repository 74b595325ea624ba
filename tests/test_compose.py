"""Packaging checked by parsing (no Docker engine here): compose services, health, dependencies, secrets, image."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from triage.cli import COMMANDS
from triage.settings import all_env_names

ROOT = Path(__file__).resolve().parent.parent
SECRET_NAME = re.compile(r"TOKEN|PASSWORD|SECRET|API_KEY|CREDENTIAL", re.IGNORECASE)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"]
    return found


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_compose_has_redis_api_worker_and_ingest(services: dict[str, Any]) -> None:
    assert set(services) >= {"redis", "api", "worker", "ingest"}


def test_redis_persists_the_queue_on_a_named_volume(compose: dict[str, Any], services: dict[str, Any]) -> None:
    redis = services["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    volume = redis["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]


def test_app_services_share_a_named_data_volume(compose: dict[str, Any], services: dict[str, Any]) -> None:
    for name in ("api", "worker", "ingest"):
        mounts = {m.split(":")[0]: m.split(":")[1] for m in services[name]["volumes"]}
        assert mounts.get("data") == "/data", name
    assert "data" in compose["volumes"]


@pytest.mark.parametrize("name", ["redis", "api", "worker"])
def test_long_running_services_have_a_healthcheck(services: dict[str, Any], name: str) -> None:
    check = services[name]["healthcheck"]
    assert check["test"][0] == "CMD" and len(check["test"]) > 1
    assert check.get("interval") and check.get("retries")


@pytest.mark.parametrize("name", ["api", "worker", "ingest"])
def test_app_services_wait_for_a_healthy_redis(services: dict[str, Any], name: str) -> None:
    assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_worker_scales_with_replicas_and_has_time_to_finish_jobs(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert worker["deploy"]["replicas"] >= 1
    assert "ports" not in worker  # replicas cannot share a published port
    assert worker["healthcheck"]["test"][1:] == ["sre-triage", "worker", "--check"]
    grace = int(str(worker["stop_grace_period"]).rstrip("s"))
    assert grace > 30  # longer than the default WORKER_SHUTDOWN_GRACE_S


def test_ingest_is_a_one_shot_profile(services: dict[str, Any]) -> None:
    ingest = services["ingest"]
    assert ingest["profiles"] == ["ingest"]
    assert ingest["restart"] == "no"


def test_service_commands_are_real_subcommands(services: dict[str, Any]) -> None:
    for name in ("api", "worker", "ingest"):
        command = services[name]["command"]
        assert command[0] == "sre-triage" and command[1] in COMMANDS, name


def test_no_secret_is_written_inline(services: dict[str, Any]) -> None:
    for name, service in services.items():
        env = service.get("environment") or {}
        items = env.items() if isinstance(env, dict) else (e.split("=", 1) for e in env)
        for key, value in items:
            assert not SECRET_NAME.search(key), f"{name} sets {key} inline; put it in .env"
            assert "@" not in str(value), f"{name}: {key} looks like a URL with credentials"


def test_app_services_read_settings_from_dotenv(services: dict[str, Any]) -> None:
    for name in ("api", "worker", "ingest"):
        assert ".env" in services[name]["env_file"], name


def test_dockerfile_is_multi_stage_slim_and_locked(dockerfile: str) -> None:
    stages = re.findall(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE)
    assert len(stages) >= 2
    assert all("slim" in image for image in stages)
    assert "uv sync --frozen --no-dev" in dockerfile
    assert "COPY pyproject.toml uv.lock" in dockerfile


def test_dockerfile_runs_as_non_root_with_healthcheck_and_runbooks(dockerfile: str) -> None:
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK .*", dockerfile, re.MULTILINE)
    assert "/healthz" in dockerfile
    assert re.search(r"RUNBOOKS_DIR=/app/runbooks", dockerfile)
    assert "COPY runbooks /app/runbooks" in dockerfile


def test_env_example_names_only_real_settings_and_no_secret_values() -> None:
    known = set(all_env_names())
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]+)=(.*)$", line)
        if not match:
            continue
        name, value = match.groups()
        assert name in known, f".env.example names {name}, which is not a setting"
        if SECRET_NAME.search(name) and not name.endswith("_ID"):
            assert value == "", f".env.example must not carry a value for {name}"


def test_env_example_has_the_lines_the_run_script_fills_in() -> None:
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    assert "WEBHOOK_TOKEN=" in lines and "API_TOKEN=" in lines
