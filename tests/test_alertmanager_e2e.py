"""A real Alertmanager posts to the real API (uvicorn) with bearer auth; a real worker process records the alert.

Alerts are pushed into Alertmanager through its ``/api/v2/alerts``; its webhook receiver delivers the notification,
re-sends it every ``repeat_interval`` (duplicates), and delivers the resolve once the alert ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from reports.models import ReportStatus
from reports.store import open_store
from tests.support.procs import free_port, require_binary, running

pytestmark = pytest.mark.slow

TOKEN = "am-bearer-token-0123456789"
BIN = Path(sys.executable).parent


@dataclass
class Stack:
    api_url: str
    alertmanager_url: str
    database_url: str
    worker: subprocess.Popen[bytes]
    worker_log: Path


def alertmanager_config(webhook_url: str) -> str:
    return f"""
route:
  receiver: triage
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 2s
receivers:
  - name: triage
    webhook_configs:
      - url: {webhook_url}
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {TOKEN}
"""


@pytest.fixture
def stack(tmp_path: Path, redis_url: str, redis: Redis) -> Iterator[Stack]:
    try:
        alertmanager = require_binary("prometheus-alertmanager")
    except RuntimeError as exc:
        pytest.skip(str(exc))
    api_port, am_port = free_port(), free_port()
    database_url = f"sqlite:///{tmp_path}/reports.db"
    env = {
        "WEBHOOK_TOKEN": TOKEN,
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "CHROMA_DIR": str(tmp_path / "chroma"),
        "LOG_LEVEL": "INFO",
    }
    (tmp_path / "am.yml").write_text(alertmanager_config(f"http://127.0.0.1:{api_port}/webhook/alertmanager"))
    api_cmd = [str(BIN / "sre-triage"), "serve", "--intake-only", "--host", "127.0.0.1", "--port", str(api_port)]
    am_cmd = [
        alertmanager,
        f"--config.file={tmp_path / 'am.yml'}",
        f"--storage.path={tmp_path / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{am_port}",
        "--cluster.listen-address=",
    ]
    with (
        running(api_cmd, api_port, env=env, cwd=tmp_path, log=tmp_path / "api.log"),
        running(am_cmd, am_port, cwd=tmp_path, log=tmp_path / "am.log"),
        running_worker(env, tmp_path) as worker,
    ):
        yield Stack(
            f"http://127.0.0.1:{api_port}",
            f"http://127.0.0.1:{am_port}",
            database_url,
            worker,
            tmp_path / "worker.log",
        )


@contextlib.contextmanager
def running_worker(env: dict[str, str], cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``sre-triage worker`` until the block ends; SIGTERM lets it finish its jobs."""
    with open(cwd / "worker.log", "wb") as log:
        proc = subprocess.Popen(
            [str(BIN / "sre-triage"), "worker"],
            env={**os.environ, **env},
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


async def wait_for(check: Callable[[], Awaitable[Any]], what: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def metric(text: str, prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


async def test_alertmanager_notification_is_triaged_once_and_resolved(stack: Stack) -> None:
    starts_at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    alert = {
        "labels": {"alertname": "HostDown", "instance": "pve2:9100", "severity": "critical"},
        "annotations": {"summary": "pve2 is down"},
        "startsAt": starts_at.isoformat(),
        "generatorURL": "http://prometheus.local/graph",
    }
    store = open_store(stack.database_url)
    async with httpx.AsyncClient(timeout=10) as client:
        pushed = await client.post(f"{stack.alertmanager_url}/api/v2/alerts", json=[alert])
        assert pushed.status_code == 200, pushed.text

        async def metrics() -> str:
            return (await client.get(f"{stack.api_url}/metrics")).text

        async def resent_as_duplicate() -> bool:
            return metric(await metrics(), 'sre_triage_alerts_total{outcome="duplicate",source="alertmanager"}') >= 1

        await wait_for(resent_as_duplicate, "Alertmanager to re-send the notification")
        await store.init()
        try:
            report = await wait_for(lambda: _first_report(store), "the worker to record the alert")
            assert report.alert.alertname == "HostDown"
            assert report.alert.source == "alertmanager"
            assert report.alert.starts_at == starts_at

            alert["endsAt"] = datetime.now(UTC).isoformat()
            assert (await client.post(f"{stack.alertmanager_url}/api/v2/alerts", json=[alert])).status_code == 200

            async def resolved() -> bool:
                current = await store.get(report.id)
                return current is not None and current.status is ReportStatus.resolved

            await wait_for(resolved, "the resolve to reach the report")
            assert await store.count() == 1
        finally:
            await store.close()
        text = await metrics()

    # one triage job and one resolve job, however often Alertmanager re-sent the group
    assert metric(text, 'sre_triage_alerts_total{outcome="accepted",source="alertmanager"}') == 2
    assert metric(text, 'sre_triage_jobs_total{function="triage_alert",outcome="success"}') == 1
    assert metric(text, 'sre_triage_jobs_total{function="resolve_alert",outcome="success"}') == 1
    assert metric(text, 'sre_triage_notifications_total{outcome="unauthorized"') == 0

    # SIGTERM: the worker shuts down cleanly (arq's handler), closing its store and withdrawing its health key
    stack.worker.terminate()
    assert stack.worker.wait(20) == 0
    assert '"message": "worker stopped"' in stack.worker_log.read_text()


async def _first_report(store: Any) -> Any:
    reports = await store.list(limit=5)
    return reports[0] if reports else None
