"""Stalled connections against the real server (``sre-triage serve``, uvicorn): a client that sends half a request
header or half a body is closed after API_REQUEST_READ_TIMEOUT_S, connections beyond API_MAX_CONNECTIONS are closed
at once, and the server's file handles come back to where they were; normal requests keep working throughout."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.intake import TOKEN
from tests.support.procs import free_port, running
from tests.support.stalls import closed_by_server, open_fds, stalled_connections, wait_until

pytestmark = pytest.mark.slow

READ_TIMEOUT_S = 2
MAX_CONNECTIONS = 150
STALLED = 100


def serve(tmp_path: Path, redis_url: str, port: int) -> tuple[list[str], dict[str, str]]:
    command = [str(Path(sys.executable).parent / "sre-triage"), "serve", "--intake-only", "--port", str(port)]
    env = {
        "WEBHOOK_TOKEN": TOKEN,
        "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{tmp_path}/reports.db",
        "CHROMA_DIR": str(tmp_path / "chroma"),
        "API_REQUEST_READ_TIMEOUT_S": str(READ_TIMEOUT_S),
        "API_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    }
    return command, env


def test_stalled_connections_are_closed_and_their_handles_released(tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    command, env = serve(tmp_path, redis_url, port)
    with running(command, port, env=env, cwd=tmp_path, log=tmp_path / "api.log") as server:
        time.sleep(0.5)
        before = open_fds(server.pid)
        started = time.monotonic()
        # authenticated, so the handler reads the body and waits for the rest of it
        half_body = (
            b"POST /webhook/grafana HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + TOKEN.encode() + b'\r\nContent-Length: 1000\r\n\r\n{"alerts": ['
        )
        with stalled_connections(port, STALLED) as headers, stalled_connections(port, 10, half_body) as bodies:
            time.sleep(0.5)
            during = open_fds(server.pid)
            # the server still answers while they hang
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
            closed = wait_until(lambda: all(closed_by_server(s) for s in headers + bodies), READ_TIMEOUT_S + 5)
            closed_in_s = None if closed is None else time.monotonic() - started
            after = open_fds(server.pid)
        print(
            f"stalled connections: {STALLED} half headers + 10 half bodies; server file handles {before} before, "
            f"{during} during, {after} after; all closed {closed_in_s:.1f} s after the stall began"
            if closed_in_s is not None
            else "not closed"
        )
        assert during >= before + STALLED
        assert closed_in_s is not None and closed_in_s <= READ_TIMEOUT_S + 2
        assert after <= before + 2


def test_connections_beyond_the_cap_are_closed_at_once(tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    command, env = serve(tmp_path, redis_url, port)
    with running(command, port, env=env, cwd=tmp_path, log=tmp_path / "api.log") as server:
        time.sleep(0.5)
        before = open_fds(server.pid)
        with stalled_connections(port, MAX_CONNECTIONS + 50) as sockets:
            time.sleep(0.5)
            peak = open_fds(server.pid)
            refused = sum(closed_by_server(s) for s in sockets)
        assert refused >= 50
        assert peak <= before + MAX_CONNECTIONS + 5
        log = (tmp_path / "api.log").read_text(errors="replace")
        assert "connections closed by a server limit" in log
