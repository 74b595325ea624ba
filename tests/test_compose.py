"""Packaging checked by parsing (no Docker engine here): compose services, health, dependencies, secrets, image."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from triage.cli.main import COMMANDS, build_parser
from triage.settings import all_env_names

ROOT = Path(__file__).resolve().parent.parent
SECRET_NAME = re.compile(r"TOKEN|PASSWORD|SECRET|API_KEY|CREDENTIAL", re.IGNORECASE)
APP_SERVICES = ("api", "worker", "ingest")
# a short-syntax volume: source (a name, a path or a ${VAR:-default}), target, options
MOUNT = re.compile(r"^(?P<source>\$\{[^}]*\}|[^:]+):(?P<target>[^:]+)(?::(?P<options>.+))?$")


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """target → (source, options) of a service's short-syntax volumes."""
    found = {}
    for spec in service.get("volumes", []):
        match = MOUNT.match(spec)
        assert match, spec
        found[match["target"]] = (match["source"], match["options"] or "")
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    return dict(env) if isinstance(env, dict) else dict(e.split("=", 1) for e in env)


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


def test_compose_has_redis_chroma_api_worker_and_ingest(services: dict[str, Any]) -> None:
    assert set(services) >= {"redis", "chroma", "api", "worker", "ingest"}


def test_redis_persists_the_queue_on_a_named_volume(compose: dict[str, Any], services: dict[str, Any]) -> None:
    redis = services["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    volume = redis["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]


def test_app_services_share_a_named_data_volume(compose: dict[str, Any], services: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        assert mounts(services[name])["/data"][0] == "data", name
    assert "data" in compose["volumes"]


@pytest.mark.parametrize("name", ["redis", "chroma", "api", "worker"])
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


def test_ingest_runs_once_at_every_start_and_survives_a_model_change(services: dict[str, Any]) -> None:
    ingest = services["ingest"]
    assert "profiles" not in ingest  # part of every `docker compose up`: no manual step builds the index
    assert ingest["restart"] == "no"
    args = build_parser().parse_args(ingest["command"][1:])
    assert args.rebuild_on_model_change and args.no_progress
    # API and workers do not wait for it: a missing index only degrades the runbook section
    for name in ("api", "worker"):
        assert "ingest" not in services[name]["depends_on"], name


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_share_the_chroma_server_not_an_embedded_index(services: dict[str, Any], name: str) -> None:
    chroma = services["chroma"]
    command = chroma["command"]
    port = command[command.index("--port") + 1]
    url = urlsplit(environment(services[name])["CHROMA_URL"])
    assert (url.hostname, str(url.port)) == ("chroma", port)
    assert services[name]["depends_on"]["chroma"]["condition"] == "service_healthy"
    assert f"127.0.0.1:{port}/api/v2/heartbeat" in " ".join(chroma["healthcheck"]["test"])


def test_chroma_keeps_its_index_on_a_named_volume(compose: dict[str, Any], services: dict[str, Any]) -> None:
    chroma = services["chroma"]
    command = chroma["command"]
    assert command[:2] == ["chroma", "run"] and command[command.index("--host") + 1] == "0.0.0.0"
    path = command[command.index("--path") + 1]
    source, _ = mounts(chroma)[path]
    assert source in compose["volumes"]
    # the server runs from our image: the chroma command of the locked chromadb, the client's own version
    assert chroma["image"] == services["api"]["image"]


def test_services_that_write_run_as_puid_pgid_defaulting_to_the_images_user(
    services: dict[str, Any], dockerfile: str
) -> None:
    uid = re.search(r"useradd .*--uid (\d+)", dockerfile)
    gid = re.search(r"groupadd .*--gid (\d+)", dockerfile)
    assert uid and gid
    for name in (*APP_SERVICES, "chroma"):
        assert services[name]["user"] == f"${{PUID:-{uid[1]}}}:${{PGID:-{gid[1]}}}", name


def test_named_volumes_of_our_services_start_owned_by_the_images_user(
    compose: dict[str, Any], services: dict[str, Any], dockerfile: str
) -> None:
    # Docker fills a new named volume from the image's folder at the mount point, ownership included; a folder the
    # image lacks starts as root's, and the unprivileged services could not write to it
    owned = set(re.search(r"chown sre:sre ([^\n\\&]+)", dockerfile)[1].split())  # type: ignore[index]
    for name in (*APP_SERVICES, "chroma"):
        for target, (source, _) in mounts(services[name]).items():
            if source in compose["volumes"]:
                assert target in owned, f"{name}: {target} is not created and chowned in the Dockerfile"


def test_the_users_own_docs_are_mounted_read_only_where_extra_docs_dirs_points(services: dict[str, Any]) -> None:
    ingest = services["ingest"]
    folders = environment(ingest)["EXTRA_DOCS_DIRS"].split(":")
    for folder in folders:
        source, options = mounts(ingest)[folder]
        assert source.startswith("${SITE_DOCS_DIR:-") and "ro" in options.split(",")


def test_service_commands_are_real_subcommands(services: dict[str, Any]) -> None:
    for name in APP_SERVICES:
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
    for name in APP_SERVICES:
        assert ".env" in services[name]["env_file"], name


def test_dockerfile_is_multi_stage_slim_and_locked(dockerfile: str) -> None:
    stages = re.findall(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE)
    python_stages = [image for image in stages if "astral-sh/uv" not in image]  # the uv stage only lends its binary
    assert len(python_stages) >= 2
    assert all("slim" in image for image in python_stages)
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


def test_the_image_pins_the_uv_that_reads_this_lock(dockerfile: str) -> None:
    pinned = re.search(r"^ARG UV_VERSION=(\d+)\.(\d+)\.(\d+)$", dockerfile, re.MULTILINE)
    assert pinned, "the image must pin an exact uv version"
    assert "FROM ghcr.io/astral-sh/uv:${UV_VERSION}" in dockerfile
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("no uv on this machine to compare with")
    local = re.search(r"(\d+)\.(\d+)\.(\d+)", subprocess.run([uv, "--version"], capture_output=True, text=True).stdout)
    assert local
    # a lock written by this uv may carry a newer lock revision than an older uv in the image can read
    assert tuple(map(int, pinned.groups()))[:2] >= tuple(map(int, local.groups()))[:2], (
        f"uv {local[0]} here, {'.'.join(pinned.groups())} in the image: raise UV_VERSION in the Dockerfile"
    )


def dockerignored(path: str) -> bool:
    """Whether ``.dockerignore`` keeps ``path`` out of the build context (last matching pattern wins)."""
    ignored = False
    for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.replace("**/", "")) for p in prefixes):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_secrets_and_local_state_out_but_not_what_the_image_copies(dockerfile: str) -> None:
    for private in (".env", ".env.local", ".venv/bin/python", ".git/HEAD", "data/sre-triage.db", "site-docs/x.md"):
        assert dockerignored(private), private
    copied = [
        src for line in re.findall(r"^COPY (?!--from)(.+)$", dockerfile, re.MULTILINE) for src in line.split()[:-1]
    ]
    assert "uv.lock" in copied and "runbooks" in copied
    for source in copied:
        assert not dockerignored(source), f"the Dockerfile copies {source} but .dockerignore excludes it"
