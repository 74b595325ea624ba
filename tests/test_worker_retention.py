"""Report retention: the worker's hourly cron job deletes reports past REPORT_RETENTION_DAYS / _COUNT."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from reports.models import Alert, AlertStatus, Report
from reports.store import open_store
from tests.support.worker_ctx import job_ctx
from triage.worker.arq_settings import worker_settings
from triage.worker.jobs import purge_reports


def report(n: int, created_at: datetime) -> Report:
    alert = Alert(
        fingerprint=f"fp{n}", alertname="DiskFull", status=AlertStatus.firing, starts_at=created_at, labels={}
    )
    return Report(id=f"r{n}", alert=alert, created_at=created_at, updated_at=created_at)


async def test_purge_job_deletes_reports_older_than_the_retention(make_settings: Any, redis: Redis) -> None:
    settings = make_settings(storage={"report_retention_days": 30})
    store = open_store(settings.storage.database_url)
    await store.init()
    try:
        now = datetime.now(UTC)
        await store.save(report(1, now - timedelta(days=45)))
        await store.save(report(2, now - timedelta(days=2)))

        deleted = await purge_reports(job_ctx(settings, store, redis))

        assert deleted == 1
        assert await store.get("r1") is None
        assert await store.get("r2") is not None
    finally:
        await store.close()


async def test_purge_job_keeps_everything_when_retention_is_off(make_settings: Any, redis: Redis) -> None:
    settings = make_settings(storage={"report_retention_days": 0, "report_retention_count": 0})
    store = open_store(settings.storage.database_url)
    await store.init()
    try:
        await store.save(report(1, datetime.now(UTC) - timedelta(days=4000)))
        assert await purge_reports(job_ctx(settings, store, redis)) == 0
        assert await store.get("r1") is not None
    finally:
        await store.close()


def test_the_worker_runs_retention_hourly_and_once_at_start_up(make_settings: Any) -> None:
    jobs = worker_settings(make_settings())["cron_jobs"]
    (job,) = [j for j in jobs if j.coroutine is purge_reports]
    assert job.run_at_startup and job.unique
