"""A job that gives up leaves a report that says so: ``failed`` with the reason for a triage that cannot finish,
delivery ``failed`` with the reason for an annotation Grafana never took, whatever the error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from arq.worker import Retry
from redis.asyncio import Redis

from reports.models import DeliveryState, ReportStatus
from reports.store import open_store
from tests.support.engine import EngineWorld, make_alert
from tests.test_worker import alert as grafana_job_alert
from tests.test_worker import enqueue, run_burst, stored
from tests.test_worker import queue as queue  # the fixture
from triage.settings import Settings
from triage.worker import triage_job
from triage.worker.jobs import job_deadline_s, triage_alert
from triage.worker.state import WorkerContext

MAX_TRIES = 3


@pytest.fixture
async def job_ctx(
    make_settings: Callable[..., Settings], redis: Redis
) -> AsyncIterator[tuple[dict[str, Any], EngineWorld]]:
    world = EngineWorld()
    world.proxmox.add_node("pve1")
    world.proxmox.add_guest(105, "jellyfin", node="pve1", uptime=86400 * 5)
    settings = make_settings(redis={"job_max_tries": MAX_TRIES, "job_timeout_s": 10})
    store = open_store(settings.storage.database_url)
    await store.init()
    deps = world.deps("proxmox", "grafana", store=store)
    ctx: dict[str, Any] = {"redis": redis, "job_try": 1}
    WorkerContext.install(ctx, settings=settings, store=store, redis=redis, deps=deps)
    yield ctx, world
    await world.aclose()
    await store.close()


async def test_a_job_that_fails_for_good_leaves_a_failed_report_with_the_reason(
    make_settings: Callable[..., Settings], queue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("no retry can fix this")

    monkeypatch.setattr(triage_job, "triage", broken)  # any error that is not transient
    settings = make_settings()
    item = grafana_job_alert()
    await enqueue(queue, item)
    worker = await run_burst(settings)
    assert worker.jobs_failed == 1
    report = await stored(settings, item.occurrence_key)
    assert report.status is ReportStatus.failed
    assert report.summary == "Triage gave up after 1 try: ValueError: no retry can fix this"


async def test_delivery_that_runs_out_of_tries_is_failed_with_its_reason(
    job_ctx: tuple[dict[str, Any], EngineWorld],
) -> None:
    ctx, world = job_ctx
    worker = WorkerContext.from_ctx(ctx)
    world.grafana.fail_next(1000, status=503, path_prefix="/api/annotations")
    alert = make_alert({"vmid": "105"}, starts_at=world.ago(5)).model_dump(mode="json")

    with pytest.raises(Retry):
        await triage_alert(ctx, alert)
    report = await worker.store.get(make_alert({}, starts_at=world.ago(5)).occurrence_key)
    assert report is not None and report.delivery is DeliveryState.pending  # tries are left

    ctx["job_try"] = MAX_TRIES
    await triage_alert(ctx, alert)  # the last try ends the job: the report says delivery failed, and why
    report = await worker.store.get(report.id)
    assert report is not None and report.status is ReportStatus.triaged
    assert report.delivery is DeliveryState.failed
    assert report.delivery_error is not None
    assert report.delivery_error.startswith(f"gave up after {MAX_TRIES} attempts: ") and "503" in report.delivery_error
    assert all(c.state == "failed" for c in report.channels.values())


@pytest.mark.slow
async def test_a_grafana_that_never_answers_ends_in_a_failed_delivery(
    job_ctx: tuple[dict[str, Any], EngineWorld],
) -> None:
    ctx, world = job_ctx
    worker = WorkerContext.from_ctx(ctx)
    alert = make_alert({"vmid": "105"}, starts_at=world.ago(5))
    world.grafana.fail_next(1000, status=503, path_prefix="/api/annotations")
    with pytest.raises(Retry):
        await triage_alert(ctx, alert.model_dump(mode="json"))  # triaged; delivery pending

    world.grafana._faults.clear()
    world.grafana.delay_s = 120.0  # accepts the connection, never answers within the job's time
    ctx["job_try"] = MAX_TRIES
    with pytest.raises(TimeoutError):
        await triage_alert(ctx, alert.model_dump(mode="json"))
    report = await worker.store.get(alert.occurrence_key)
    assert report is not None and report.delivery is DeliveryState.failed
    deadline = job_deadline_s(worker.settings)
    assert report.delivery_error == (
        f"gave up after {MAX_TRIES} tries: JobDeadline: the attempt did not finish within {deadline:.0f} s"
    )
