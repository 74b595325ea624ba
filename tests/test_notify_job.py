"""Notifications from the triage job: one place delivers to Grafana and to every NOTIFY_URLS channel, retries the
channels that failed with backoff (never re-sending the others), gives up after the last try, and shows each
channel's state on the report page."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from arq.worker import Retry
from fastapi.testclient import TestClient
from redis.asyncio import Redis

from reports.models import ChannelDelivery, DeliveryState, ReportStatus
from reports.render import render_report_html
from reports.store import open_store
from tests.support.engine import EngineWorld, make_alert
from tests.support.receivers import HttpReceiver, http_receiver
from tests.support.sample_reports import sample_report
from triage.notify.stats import read_delivery_stats
from triage.settings import Settings, StartupError
from triage.worker import jobs, triage_job
from triage.worker.jobs import mark_resolved
from triage.worker.state import WorkerContext
from webhook.app import create_app
from webhook.metrics import IntakeMetrics

Ctx = dict[str, Any]


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with http_receiver() as running:
        yield running


@pytest.fixture
async def notify_ctx(
    make_settings: Callable[..., Settings], redis: Redis, receiver: HttpReceiver
) -> AsyncIterator[tuple[Ctx, EngineWorld]]:
    world = EngineWorld()
    world.proxmox.add_node("pve1")
    world.proxmox.add_guest(105, "jellyfin", node="pve1", uptime=86400 * 5)
    settings = make_settings(
        notify={"urls": f"json://{receiver.hostport}/hook/s3cr3t-path-token", "rate_limit_s": 0},
        redis={"job_max_tries": 3},
    )
    store = open_store(settings.storage.database_url)
    await store.init()
    deps = world.deps("proxmox", "grafana", store=store)
    ctx: Ctx = {"redis": redis}
    WorkerContext.install(ctx, settings=settings, store=store, redis=redis, deps=deps)
    yield ctx, world
    await world.aclose()
    await store.close()


async def test_a_triaged_report_goes_to_grafana_and_the_channel_from_one_place(
    notify_ctx: tuple[Ctx, EngineWorld], receiver: HttpReceiver
) -> None:
    ctx, world = notify_ctx
    worker = WorkerContext.from_ctx(ctx)
    alert = make_alert({"vmid": "105", "severity": "critical"}, starts_at=world.ago(5))
    report = await triage_job.triage_and_deliver(worker, await worker.store.record_alert(alert))

    assert report.delivery is DeliveryState.delivered and report.delivery_error is None
    assert {k: c.state for k, c in report.channels.items()} == {"grafana": "delivered", "notify-1": "delivered"}
    assert len(world.grafana.annotations) == 1
    [request] = receiver.requests
    sent = json.loads(request.body)
    assert sent["title"] == "[FIRING] HostHighCpu on vmid 105 (critical)"
    assert f"Report: http://testserver/reports/{report.id}?exp=" in sent["message"]
    stored = await worker.store.get(report.id)
    assert stored is not None and stored.channels == report.channels


async def test_a_channel_outage_retries_the_job_without_sending_twice_to_the_others(
    notify_ctx: tuple[Ctx, EngineWorld], receiver: HttpReceiver
) -> None:
    ctx, world = notify_ctx
    worker = WorkerContext.from_ctx(ctx)
    receiver.fail_next(1, status=503)
    alert = make_alert({"vmid": "105"}, starts_at=world.ago(5))
    with pytest.raises(Retry) as retry:
        await jobs.triage_alert({**ctx, "job_try": 1}, alert.model_dump(mode="json"))
    assert retry.value.defer_score == 5000  # JOB_RETRY_BACKOFF_S, doubled per try
    stored = await worker.store.get(alert.occurrence_key)
    assert stored is not None and stored.status is ReportStatus.triaged
    assert stored.delivery is DeliveryState.pending
    notify = stored.channels["notify-1"]
    assert notify.state == "pending" and notify.attempts == 1 and notify.error and "503" in notify.error
    assert "s3cr3t-path-token" not in notify.error + notify.label + (stored.delivery_error or "")

    result = await jobs.triage_alert({**ctx, "job_try": 2}, alert.model_dump(mode="json"))
    assert result["status"] == "triaged"
    again = await worker.store.get(alert.occurrence_key)
    assert again is not None and again.delivery is DeliveryState.delivered
    assert again.channels["notify-1"].attempts == 2 and again.channels["grafana"].attempts == 1
    assert len(receiver.requests) == 2 and len(world.grafana.annotations) == 1

    counted = await read_delivery_stats(worker.redis)
    assert counted == {("grafana", "delivered"): 1, ("notify-1", "pending"): 1, ("notify-1", "delivered"): 1}
    text, _ = await IntakeMetrics().render(worker.redis)
    assert b'sre_triage_deliveries_total{channel="notify-1",state="pending"} 1.0' in text


async def test_the_last_try_marks_the_channel_failed_and_keeps_the_report(
    notify_ctx: tuple[Ctx, EngineWorld], receiver: HttpReceiver
) -> None:
    ctx, world = notify_ctx
    worker = WorkerContext.from_ctx(ctx)
    receiver.fail_next(10, status=500)
    alert = make_alert({"vmid": "105"}, starts_at=world.ago(5))
    result = await jobs.triage_alert({**ctx, "job_try": 3}, alert.model_dump(mode="json"))
    assert result["status"] == "triaged"
    stored = await worker.store.get(alert.occurrence_key)
    assert stored is not None and stored.delivery is DeliveryState.failed
    assert stored.channels["grafana"].state == "delivered"
    assert stored.channels["notify-1"].state == "failed"
    assert (stored.channels["notify-1"].error or "").startswith("gave up after 3 attempts: ")
    assert (stored.delivery_error or "").startswith("json://127.0.0.1:")

    html = render_report_html(stored)
    assert '<span class="pill st-failed">failed</span>' in html
    assert "gave up after 3 attempts" in html and "s3cr3t-path-token" not in html


async def test_resolve_sends_a_resolved_message_and_extends_the_annotation(
    notify_ctx: tuple[Ctx, EngineWorld], receiver: HttpReceiver
) -> None:
    ctx, world = notify_ctx
    worker = WorkerContext.from_ctx(ctx)
    alert = make_alert({"vmid": "105"}, starts_at=world.ago(5))
    triaged = await triage_job.triage_and_deliver(worker, await worker.store.record_alert(alert))
    resolved = await mark_resolved(worker.store, triaged, alert.model_copy(update={"ends_at": world.ago(1)}))
    closed = await triage_job.deliver_resolved(worker, resolved)
    assert {c.event for c in closed.channels.values()} == {"resolved"}
    assert closed.delivery is DeliveryState.delivered
    titles = [json.loads(r.body)["title"] for r in receiver.requests]
    assert titles == ["[FIRING] HostHighCpu on vmid 105", "[RESOLVED] HostHighCpu on vmid 105"]
    assert len(world.grafana.annotations) == 1


def test_an_unknown_notification_url_stops_start_up_without_showing_it(
    make_settings: Callable[..., Settings],
) -> None:
    with pytest.raises(StartupError) as raised:
        make_settings(notify={"urls": "ntfy://ntfy.lan/topic, nosuch://user:hunter2@host/x"})
    message = str(raised.value)
    assert "NOTIFY_URLS: entry 2 (nosuch://…) is not a notification URL Apprise supports" in message
    assert "hunter2" not in message


def test_the_report_page_lists_every_channel_with_its_state(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    report = sample_report().model_copy(
        update={
            "delivery": DeliveryState.delivered,
            "channels": {
                "grafana": ChannelDelivery(label="Grafana annotation", state="delivered", attempts=1),
                "notify-1": ChannelDelivery(label="ntfy://ntfy.lan/…", state="rate_limited", attempts=1),
                "notify-2": ChannelDelivery(label="mailto://smtp.lan", state="filtered", attempts=1),
            },
        }
    )

    async def save() -> None:
        store = open_store(settings.storage.database_url)
        await store.init()
        await store.save(report)
        await store.close()

    asyncio.run(save())
    with TestClient(create_app(settings)) as client:
        page = client.get(f"/reports/{report.id}", headers={"Authorization": "Bearer test-api-token"})
        data = client.get(f"/reports/{report.id}.json", headers={"Authorization": "Bearer test-api-token"}).json()
    assert page.status_code == 200
    assert "<code>ntfy://ntfy.lan/…</code>" in page.text and "held back by NOTIFY_RATE_LIMIT_S" in page.text
    assert "severity not in NOTIFY_SEVERITIES" in page.text
    assert data["delivery"] == "delivered" and data["channels"]["notify-1"]["state"] == "rate_limited"
