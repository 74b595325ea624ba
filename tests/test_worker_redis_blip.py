"""Redis stops and starts again under a running worker process: the worker reconnects, triages a job posted
afterwards, and still ends on SIGTERM within its grace period."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from reports.models import ReportStatus
from reports.payloads import parse_alerts
from reports.store import open_store
from tests.support.intake import grafana_alert, grafana_notification
from tests.support.procs import RedisServer
from triage.constants import HEALTH_CHECK_KEY
from triage.worker.queue import job_for, queue_client

pytestmark = pytest.mark.slow

GRACE_S = 5
OUTAGE_S = 3.0


def worker_env(tmp_path: Path, redis_url: str, database_url: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "CHROMA_DIR": str(tmp_path / "chroma"),
        "WORKER_SHUTDOWN_GRACE_S": str(GRACE_S),
    }


async def enqueue(redis_url: str, name: str) -> str:
    alert = parse_alerts("grafana", grafana_notification(grafana_alert(name, fingerprint=name.lower())))[0]
    queue = queue_client(redis_url)
    try:
        function, job_id = job_for(alert)
        await queue.enqueue_job(function, alert.model_dump(mode="json"), _job_id=job_id)
    finally:
        await queue.aclose(close_connection_pool=True)
    return alert.occurrence_key


async def wait_for_report(database_url: str, key: str, timeout_s: float) -> Any:
    import asyncio

    store = open_store(database_url)
    await store.init()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            report = await store.get(key)
            if report is not None and report.status is not ReportStatus.received:
                return report
            await asyncio.sleep(0.2)
        return await store.get(key)
    finally:
        await store.close()


async def health_key_present(redis_url: str) -> bool:
    client = queue_client(redis_url)
    try:
        return bool(await client.exists(HEALTH_CHECK_KEY))
    finally:
        await client.aclose(close_connection_pool=True)


async def test_worker_rides_out_a_redis_restart_and_still_ends_on_sigterm(
    make_settings: Any, redis_server: RedisServer, tmp_path: Path
) -> None:
    settings = make_settings(redis={"redis_url": redis_server.url})
    database_url = settings.storage.database_url
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "triage.cli.main", "worker"],
            env=worker_env(tmp_path, redis_server.url, database_url),
            cwd=Path(__file__).resolve().parent.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            before = await enqueue(redis_server.url, "BeforeBlip")
            assert (await wait_for_report(database_url, before, 60)).status is ReportStatus.triaged

            redis_server.stop()
            time.sleep(OUTAGE_S)
            assert worker.poll() is None, log_path.read_text(errors="replace")
            redis_server.start()
            restarted = time.monotonic()

            after = await enqueue(redis_server.url, "AfterBlip")
            report = await wait_for_report(database_url, after, 60)
            triaged_in_s = time.monotonic() - restarted
            assert worker.poll() is None, log_path.read_text(errors="replace")
            assert report is not None and report.status is ReportStatus.triaged, log_path.read_text(errors="replace")
            # the worker writes its health key again once Redis is back (it was lost with the restart)
            deadline = time.monotonic() + 10
            while not await health_key_present(redis_server.url) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert await health_key_present(redis_server.url)

            started = time.monotonic()
            worker.send_signal(signal.SIGTERM)
            returncode = worker.wait(GRACE_S + 5)
            stopped_in_s = time.monotonic() - started
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(10)
    text = log_path.read_text(errors="replace")
    assert returncode == 0, text
    assert stopped_in_s < GRACE_S
    assert "redis unreachable" in text and "redis reachable again" in text
    print(
        f"redis blip: outage {OUTAGE_S:.0f} s; job posted after the restart triaged {triaged_in_s:.1f} s after it; "
        f"worker stopped {stopped_in_s:.2f} s after SIGTERM (grace {GRACE_S} s)"
    )


async def test_sigterm_ends_the_worker_while_redis_is_down(
    make_settings: Any, redis_server: RedisServer, tmp_path: Path
) -> None:
    settings = make_settings(redis={"redis_url": redis_server.url})
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "triage.cli.main", "worker"],
            env=worker_env(tmp_path, redis_server.url, settings.storage.database_url),
            cwd=Path(__file__).resolve().parent.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while not await health_key_present(redis_server.url) and time.monotonic() < deadline:
                time.sleep(0.2)
            redis_server.stop()
            time.sleep(OUTAGE_S)
            assert worker.poll() is None, log_path.read_text(errors="replace")
            started = time.monotonic()
            worker.send_signal(signal.SIGTERM)
            returncode = worker.wait(GRACE_S + 5)
            stopped_in_s = time.monotonic() - started
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait(10)
    text = log_path.read_text(errors="replace")
    assert returncode == 0, text
    assert stopped_in_s < GRACE_S, text
    assert "could not remove the health key on shutdown" in text
    print(f"redis down: worker stopped {stopped_in_s:.2f} s after SIGTERM (grace {GRACE_S} s)")
