"""The arq worker against a real Redis and a real SQLite store: jobs record alerts, resolve, retry, and count."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from arq.connections import ArqRedis
from arq.jobs import Job, JobStatus, serialize_job
from redis.asyncio import Redis

from reports.models import Alert, AlertStatus, ReportStatus
from reports.payloads import parse_alerts
from reports.store import StoreError, open_store
from tests.support.intake import grafana_alert, grafana_notification
from tools.errors import SourceAuthError, SourceServerError, SourceTimeout
from triage.constants import HEALTH_CHECK_KEY, QUEUE_NAME
from triage.settings import Settings
from triage.worker.arq_settings import build_worker, check_worker_health, shutdown, startup, worker_settings
from triage.worker.digest_job import send_digest
from triage.worker.job_stats import read_job_stats
from triage.worker.jobs import is_transient, purge_reports, retry_delay_s, triage_alert
from triage.worker.queue import dump_job, encode_job, job_for, load_job, queue_client
from triage.worker.state import KEY, WorkerContext, WorkerNotStarted


def alert(status: str = "firing", **kwargs: Any) -> Alert:
    ends_at = "2026-11-26T10:09:00Z" if status == "resolved" else "0001-01-01T00:00:00Z"
    return parse_alerts("grafana", grafana_notification(grafana_alert(status=status, ends_at=ends_at, **kwargs)))[0]


@pytest.fixture
async def queue(redis_url: str, redis: Redis) -> AsyncIterator[ArqRedis]:
    client = queue_client(redis_url)
    try:
        yield client
    finally:
        await client.aclose(close_connection_pool=True)


async def enqueue(queue: ArqRedis, item: Alert) -> Job | None:
    function, job_id = job_for(item)
    return await queue.enqueue_job(function, item.model_dump(mode="json"), _job_id=job_id)


async def run_burst(settings: Settings, **overrides: Any) -> Any:
    overrides.setdefault("cron_jobs", [])  # retention has its own tests; keep job counts to the queued jobs
    worker = build_worker(settings, burst=True, poll_delay=0.02, handle_signals=False, **overrides)
    try:
        await worker.main()
    finally:
        with warnings.catch_warnings():
            # arq 0.28 closes its pool with redis-py's deprecated close()
            warnings.filterwarnings("ignore", "Call to deprecated close", DeprecationWarning)
            await worker.close()
    return worker


async def stored(settings: Settings, report_id: str) -> Any:
    store = open_store(settings.storage.database_url)
    await store.init()
    try:
        return await store.get(report_id)
    finally:
        await store.close()


def test_worker_settings_follow_the_configuration(make_settings: Any) -> None:
    settings = make_settings(redis={"job_max_tries": 3, "job_timeout_s": 42, "dedup_window_s": 7200})

    kwargs = worker_settings(settings)

    assert (kwargs["max_tries"], kwargs["job_timeout"], kwargs["keep_result"]) == (3, 42, 7200)
    assert kwargs["queue_name"] == QUEUE_NAME
    assert kwargs["health_check_key"] == HEALTH_CHECK_KEY
    assert {f.__name__ for f in kwargs["functions"]} == {"triage_alert", "resolve_alert"}


async def test_triage_job_records_the_alert_in_the_store(make_settings: Any, redis: Redis, queue: ArqRedis) -> None:
    settings = make_settings()
    firing = alert()
    await enqueue(queue, firing)

    worker = await run_burst(settings)

    assert worker.jobs_complete == 1 and worker.jobs_failed == 0
    report = await stored(settings, firing.occurrence_key)
    assert report is not None
    assert report.status is ReportStatus.triaged
    assert report.alert.fingerprint == firing.fingerprint
    assert report.alert.values == {"A": 97.5}
    # a worker that stopped cleanly withdraws its health-check key
    assert not await redis.exists(HEALTH_CHECK_KEY)


async def test_resolve_job_marks_the_firing_report_resolved(make_settings: Any, redis: Redis, queue: ArqRedis) -> None:
    settings = make_settings()
    await enqueue(queue, alert())
    await run_burst(settings)

    await enqueue(queue, alert("resolved"))
    await run_burst(settings)

    report = await stored(settings, alert().occurrence_key)
    assert report.status is ReportStatus.resolved
    assert report.resolved_at == datetime(2026, 11, 26, 10, 9, tzinfo=UTC)
    assert report.alert.ends_at == datetime(2026, 11, 26, 10, 9, tzinfo=UTC)
    assert report.alert.status is AlertStatus.resolved


async def test_a_late_triage_does_not_reopen_a_resolved_report(
    make_settings: Any, redis: Redis, queue: ArqRedis
) -> None:
    settings = make_settings()
    await enqueue(queue, alert("resolved"))
    await run_burst(settings)

    await enqueue(queue, alert())
    await run_burst(settings)

    assert (await stored(settings, alert().occurrence_key)).status is ReportStatus.resolved


async def test_finished_job_keeps_blocking_resends_for_the_dedup_window(
    make_settings: Any, redis: Redis, queue: ArqRedis
) -> None:
    settings = make_settings()
    assert await enqueue(queue, alert()) is not None
    await run_burst(settings)

    assert await enqueue(queue, alert()) is None
    ttl = await redis.ttl("arq:result:" + job_for(alert())[1])
    assert settings.redis.dedup_window_s - 10 < ttl <= settings.redis.dedup_window_s


class FlakyStore:
    """Wraps the real store; ``record_alert`` fails the first ``failures`` times."""

    def __init__(self, inner: Any, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.calls = 0

    async def record_alert(self, item: Alert) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise StoreError("database is locked")
        return await self.inner.record_alert(item)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def flaky_startup(settings: Settings, failures: int) -> Callable[[dict[str, Any]], Awaitable[None]]:
    async def on_startup(ctx: dict[str, Any]) -> None:
        await startup(settings, ctx)
        worker = WorkerContext.from_ctx(ctx)
        flaky = FlakyStore(worker.store, failures)
        WorkerContext.install(ctx, settings=settings, store=flaky, redis=worker.redis, deps=worker.deps)

    return on_startup


async def test_transient_store_failures_are_retried_until_the_alert_is_stored(
    make_settings: Any, redis: Redis, queue: ArqRedis
) -> None:
    settings = make_settings(redis={"job_max_tries": 4, "job_retry_backoff_s": 0.05})
    firing = alert()
    job = await enqueue(queue, firing)

    worker = await run_burst(settings, on_startup=flaky_startup(settings, 2))

    assert (worker.jobs_retried, worker.jobs_complete, worker.jobs_failed) == (2, 1, 0)
    assert (await stored(settings, firing.occurrence_key)) is not None
    assert job is not None
    info = await job.result_info()
    assert info is not None and info.success and info.job_try == 3
    stats = (await read_job_stats(redis))["triage_alert"]
    assert stats.outcomes == {"retry": 2, "success": 1}
    assert stats.count == 3


async def test_job_fails_after_max_tries_and_is_counted(make_settings: Any, redis: Redis, queue: ArqRedis) -> None:
    settings = make_settings(redis={"job_max_tries": 2, "job_retry_backoff_s": 0.05})
    job = await enqueue(queue, alert())

    worker = await run_burst(settings, on_startup=flaky_startup(settings, 100))

    assert (worker.jobs_retried, worker.jobs_failed) == (1, 1)
    assert job is not None
    assert await job.status() is JobStatus.complete
    raw = await redis.get("arq:result:" + job.job_id)
    result = load_job(raw)
    assert result["s"] is False and "database is locked" in result["r"]
    assert (await read_job_stats(redis))["triage_alert"].outcomes == {"retry": 1, "failure": 1}


async def test_a_job_outside_a_started_worker_says_what_is_missing(redis: Redis) -> None:
    with pytest.raises(WorkerNotStarted, match="start-up did not run"):
        await triage_alert({"redis": redis, "job_try": 1}, alert().model_dump(mode="json"))
    with pytest.raises(WorkerNotStarted, match="WorkerContext"):
        await purge_reports({"redis": redis, KEY: {"settings": "not a worker context"}})
    with pytest.raises(WorkerNotStarted):
        await send_digest({})
    assert not await redis.keys("*")  # nothing was counted or stored


async def test_start_up_puts_one_worker_context_in_the_job_context_and_shutdown_takes_it_out(
    make_settings: Any, redis: Redis
) -> None:
    settings = make_settings()
    ctx: dict[str, Any] = {"redis": redis}
    await startup(settings, ctx)
    worker = WorkerContext.from_ctx(ctx)
    assert list(ctx) == ["redis", KEY]
    assert worker.settings is settings and worker.redis is redis and worker.deps.store is worker.store
    await shutdown(ctx)
    assert list(ctx) == ["redis"]


async def test_an_unreadable_job_fails_without_retrying(make_settings: Any, redis: Redis, queue: ArqRedis) -> None:
    settings = make_settings()
    await queue.enqueue_job("triage_alert", {"fingerprint": "x"}, _job_id="triage:broken")

    worker = await run_burst(settings)

    assert (worker.jobs_failed, worker.jobs_retried) == (1, 0)


@pytest.mark.parametrize(("job_try", "expected"), [(1, 5.0), (2, 10.0), (3, 20.0), (20, 600.0)])
def test_retry_backoff_doubles_and_is_capped(job_try: int, expected: float) -> None:
    assert retry_delay_s(job_try, 5.0) == expected


def test_api_job_encoding_is_what_arq_would_serialise() -> None:
    item = alert()

    ours = encode_job("triage_alert", item.model_dump_json().encode(), 1_700_000_000_123)
    arqs = serialize_job(
        "triage_alert", (item.model_dump(mode="json"),), {}, None, 1_700_000_000_123, serializer=dump_job
    )

    assert load_job(ours) == load_job(arqs)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (StoreError("locked"), True),
        (SourceTimeout("slow", source="prometheus"), True),
        (SourceServerError("bad gateway", source="loki", status_code=502), True),
        (SourceServerError("broken", source="loki", status_code=500), False),
        (SourceAuthError("denied", source="grafana", status_code=401), False),
        (ValueError("bug"), False),
    ],
)
def test_only_transient_failures_are_retried(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


async def test_worker_health_check_command_reflects_the_health_key(make_settings: Any, redis: Redis) -> None:
    settings = make_settings()

    assert await check_worker_health(settings) == 1
    await redis.set(HEALTH_CHECK_KEY, "alive", ex=60)
    assert await check_worker_health(settings) == 0
    assert await check_worker_health(make_settings(redis={"redis_url": "redis://127.0.0.1:1/0"})) == 1
