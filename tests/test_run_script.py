"""``scripts/run.sh`` for real: it starts Redis, the index, the worker and the API, and stops all of them on SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.procs import free_port, require_binary, wait_port

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = "# Disk full\n\n## Diagnosis\n\n`du -xh --max-depth=2 /` finds what grew.\n"


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def install(tmp_path: Path) -> Path:
    """A copy of the scripts next to links to this checkout, with its own .env, data folder and runbooks."""
    require_binary("redis-server")
    root = tmp_path / "install"
    root.mkdir()
    shutil.copytree(ROOT / "scripts", root / "scripts")
    for name in (".venv", "pyproject.toml", "uv.lock", ".env.example"):
        (root / name).symlink_to(ROOT / name)
    # `uv sync` would re-point the shared virtualenv's editable install at this copy: the environment is ready here
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "uv").write_text("#!/bin/sh\nexit 0\n")
    (stub / "uv").chmod(0o755)
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir()
    (runbooks / "disk.md").write_text(RUNBOOK)
    return root


def test_sigterm_stops_the_api_the_worker_and_the_redis_it_started(install: Path, tmp_path: Path) -> None:
    redis_port, api_port = free_port(), free_port()
    (install / ".env").write_text(
        "WEBHOOK_TOKEN=run-script-webhook-token\nAPI_TOKEN=run-script-api-token\n"
        f"REDIS_URL=redis://127.0.0.1:{redis_port}/0\nAPI_HOST=127.0.0.1\nAPI_PORT={api_port}\n"
        f"RUNBOOKS_DIR={tmp_path / 'runbooks'}\n"
    )
    env = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TMPDIR")}
    env["PATH"] = f"{tmp_path / 'bin'}:{os.environ['PATH']}"
    log = (tmp_path / "run.log").open("wb")
    proc = subprocess.Popen(
        ["bash", "scripts/run.sh"], cwd=install, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_port(api_port, 120, proc)
        assert listening(redis_port)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()
        if listening(redis_port):
            subprocess.run(["redis-cli", "-p", str(redis_port), "shutdown", "nosave"], capture_output=True)
    output = (tmp_path / "run.log").read_text(errors="replace")

    assert code == 0, output[-2000:]
    assert took < 25  # the worker's grace period is 30 s; nothing was running
    assert not listening(api_port)
    deadline = time.monotonic() + 5
    while listening(redis_port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not listening(redis_port)
    assert "sre-triage stopped" in output
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # nothing of the script's process group is left
