"""A report store on a full filesystem: readiness says so, the job's store error is logged and retried with backoff,
and once space is back the alert is triaged. Needs a real small filesystem (a tmpfs mount: root only)."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from reports.models import ReportStatus
from reports.store import StoreError, open_store
from tests.support.intake import api
from tests.test_worker import alert, enqueue, run_burst, stored
from tests.test_worker import queue as queue  # the fixture
from webhook.app import intake_routers

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "4m") -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> Path:
    """Take every free byte of the filesystem."""
    target = folder / "filler"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    try:
        while True:
            os.write(fd, b"\0")
    except OSError:
        pass
    finally:
        os.close(fd)
    return target


async def test_a_full_store_is_not_ready_its_jobs_retry_and_finish_once_space_is_back(
    make_settings: Any, redis: Redis, queue: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with small_filesystem(tmp_path / "store") as folder:
        settings = make_settings(
            storage={"database_url": f"sqlite:///{folder}/reports.db"},
            redis={"job_retry_backoff_s": 0.2, "job_max_tries": 5},
        )
        store = open_store(settings.storage.database_url)
        await store.init()
        await store.ping()
        filler = fill(folder)
        with pytest.raises(StoreError, match="full"):
            await store.ping()
        await store.close()

        async with api(settings, routers=intake_routers) as (_, client):
            ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert "store" in ready.text

        item = alert(fingerprint="full-disk", alertname="DiskFull" * 200)
        await enqueue(queue, item)
        with caplog.at_level(logging.WARNING, logger="triage.worker.jobs"):
            first = await run_burst(settings, max_burst_jobs=1)
        assert first.jobs_retried == 1 and first.jobs_failed == 0
        retry_logs = [r for r in caplog.records if r.getMessage() == "transient failure, retrying"]
        assert retry_logs and retry_logs[0].error_type == "StoreError"  # type: ignore[attr-defined]
        assert "full" in retry_logs[0].error  # type: ignore[attr-defined]

        filler.unlink()
        second = await run_burst(settings)
        assert second.jobs_complete == 1 and second.jobs_failed == 0
        report = await stored(settings, item.occurrence_key)
        assert report.status is ReportStatus.triaged
