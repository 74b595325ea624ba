"""The triage job end to end in-process (store, fakes, Grafana delivery) and the ``sre-triage triage`` command."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from reports.models import DeliveryState, ReportStatus
from reports.store import open_store
from tests.support.engine import EngineWorld, make_alert
from tests.support.intake import grafana_alert, grafana_notification, load_payload
from triage.cli.main import main
from triage.settings import Settings
from triage.worker import triage_job
from triage.worker.jobs import mark_resolved
from triage.worker.state import WorkerContext


@pytest.fixture
async def job_ctx(
    make_settings: Callable[..., Settings], redis: Redis
) -> AsyncIterator[tuple[WorkerContext, EngineWorld]]:
    world = EngineWorld()
    world.proxmox.add_node("pve1")
    world.proxmox.add_guest(105, "jellyfin", node="pve1", uptime=86400 * 5)
    world.pbs.add_datastore("main")
    world.pbs.add_task("backup", "main:vm/105", starttime=world.epoch_ago(15))
    settings = make_settings()
    store = open_store(settings.storage.database_url)
    await store.init()
    deps = world.deps("proxmox", "pbs", "grafana", store=store)
    yield WorkerContext.install({"redis": redis}, settings=settings, store=store, redis=redis, deps=deps), world
    await world.aclose()
    await store.close()


async def test_the_job_triages_stores_and_delivers_one_annotation(job_ctx: tuple[WorkerContext, EngineWorld]) -> None:
    worker, world = job_ctx
    alert = make_alert({"vmid": "105"}, starts_at=world.ago(5))
    received = await worker.store.record_alert(alert)
    report = await triage_job.triage_and_deliver(worker, received)
    assert report.status is ReportStatus.triaged and report.delivery is DeliveryState.delivered
    assert report.evidence[0].kind == "backup"
    stored = await worker.store.get(alert.occurrence_key)
    assert stored is not None and stored.annotation is not None and stored.evidence == report.evidence
    assert len(world.grafana.annotations) == 1


async def test_a_triage_cancelled_midway_is_retried_into_exactly_one_report(
    job_ctx: tuple[WorkerContext, EngineWorld],
) -> None:
    worker, world = job_ctx
    world.proxmox.delay_s = 5.0  # the first attempt hangs on Proxmox and is cancelled, as a killed job is
    alert = make_alert({"vmid": "105"}, starts_at=world.ago(5))
    received = await worker.store.record_alert(alert)
    attempt = asyncio.create_task(triage_job.triage_and_deliver(worker, received))
    await asyncio.sleep(0.3)
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt
    assert (await worker.store.get(alert.occurrence_key)).status is ReportStatus.received  # type: ignore[union-attr]

    world.proxmox.delay_s = 0.0
    retried = await triage_job.triage_and_deliver(worker, await worker.store.record_alert(alert))
    again = await triage_job.triage_and_deliver(worker, await worker.store.record_alert(alert))
    assert retried.id == again.id == alert.occurrence_key
    assert await worker.store.count() == 1
    assert len(world.grafana.annotations) == 1
    assert again.evidence == retried.evidence  # the second run delivered, it did not triage again


async def test_a_grafana_outage_keeps_the_triaged_report_and_asks_for_a_retry(
    job_ctx: tuple[WorkerContext, EngineWorld],
) -> None:
    worker, world = job_ctx
    world.grafana.fail_next(20, status=503)
    alert = make_alert({"vmid": "105"}, starts_at=world.ago(5))
    received = await worker.store.record_alert(alert)
    with pytest.raises(Exception) as raised:
        await triage_job.triage_and_deliver(worker, received)
    assert getattr(raised.value, "transient", False)
    stored = await worker.store.get(alert.occurrence_key)
    assert stored is not None and stored.status is ReportStatus.triaged
    assert stored.delivery is DeliveryState.pending and "503" in (stored.delivery_error or "")


def test_cli_triages_an_alertmanager_file_and_prints_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    payload = tmp_path / "alert.json"
    payload.write_text(json.dumps(load_payload("alertmanager_v4_example.json")))
    assert main(["triage", str(payload), "--json", "--no-deliver"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["alert"]["alertname"] == "ProbeFailure" and report["alert"]["source"] == "cli"
    assert report["status"] == "triaged"
    assert report["llm"]["skipped_reason"] == "no LLM is configured (OPENAI_BASE_URL)"
    assert report["sources"]["saturation"]["error"] == "not configured (set PROMETHEUS_URL)"


def test_cli_prints_markdown_for_a_grafana_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    payload = tmp_path / "alert.json"
    payload.write_text(json.dumps(grafana_notification(grafana_alert("DiskFull"))))
    assert main(["triage", str(payload), "--no-deliver"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# DiskFull — firing")
    assert "## Summary" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [("{nope", "is not JSON"), ('{"alerts": []}', "cannot tell the payload format")],
)
def test_cli_rejects_a_bad_payload_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    payload = tmp_path / "alert.json"
    payload.write_text(content)
    assert main(["triage", str(payload)]) == 2
    assert message in capsys.readouterr().err


async def test_resolving_extends_the_same_annotation_without_a_new_triage(
    job_ctx: tuple[WorkerContext, EngineWorld],
) -> None:
    worker, world = job_ctx
    alert = make_alert({"vmid": "105"}, starts_at=world.ago(5))
    triaged = await triage_job.triage_and_deliver(worker, await worker.store.record_alert(alert))
    requests_before = world.proxmox.request_count
    resolved = await mark_resolved(worker.store, triaged, alert.model_copy(update={"ends_at": world.ago(1)}))
    closed = await triage_job.deliver_resolved(worker, resolved)
    assert closed.status is ReportStatus.resolved and closed.delivery is DeliveryState.delivered
    assert closed.annotation == triaged.annotation and len(world.grafana.annotations) == 1
    annotation = world.grafana.annotations[closed.annotation.id]  # type: ignore[union-attr]
    assert annotation["timeEnd"] == int(world.ago(1).timestamp() * 1000)
    assert world.proxmox.request_count == requests_before
