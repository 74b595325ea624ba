"""Delivery to Grafana against the Grafana fake: create, resolve by PATCH, retries, no duplicates, fallbacks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from reports.delivery import (
    DeliveryError,
    annotation_tags,
    deliver,
    deliver_resolve,
    retry_delay_s,
)
from reports.links import LinkSigner
from reports.models import DeliveryState
from tests.fakes.grafana import FakeGrafana
from tests.support.sample_reports import START, sample_alert, sample_report
from triage.settings import ApiSettings

NOW = START + timedelta(seconds=20)


@dataclass
class _Settings:
    api: ApiSettings


@pytest.fixture
def settings() -> _Settings:
    return _Settings(ApiSettings(api_token="test-api-token", public_url="https://triage.lan"))


@pytest.fixture
def grafana() -> FakeGrafana:
    fake = FakeGrafana()
    fake.add_dashboard("node-exporter", "Node exporter", panels=[{"id": 4, "title": "Memory", "type": "timeseries"}])
    return fake


def _link(text: str) -> str:
    start = text.index('href="') + len('href="')
    return text[start : text.index('"', start)].replace("&amp;", "&")


async def test_report_becomes_a_region_annotation_on_the_alerts_dashboard_panel(
    grafana: FakeGrafana, settings: _Settings
) -> None:
    report = sample_report()
    async with grafana.client() as client:
        delivered = await deliver(report, client, settings, now=NOW)

    assert delivered.delivery == DeliveryState.delivered
    assert delivered.annotation is not None
    stored = grafana.annotations[delivered.annotation.id]
    assert stored["dashboardUID"] == "node-exporter"
    assert stored["panelId"] == 4
    assert stored["tags"] == ["sre-triage", "HostMemoryPressure", "critical", f"report:{report.id}"]
    assert stored["time"] == int(START.timestamp() * 1000)
    assert stored["timeEnd"] == int(NOW.timestamp() * 1000)
    assert "Backup snapshot of lxc/115" in stored["text"]
    assert len(stored["text"]) <= 1000


async def test_annotation_link_is_a_signed_public_url_that_opens_the_report(
    grafana: FakeGrafana, settings: _Settings
) -> None:
    report = sample_report()
    async with grafana.client() as client:
        delivered = await deliver(report, client, settings, now=NOW)
    assert delivered.annotation is not None
    link = _link(grafana.annotations[delivered.annotation.id]["text"])

    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"https://triage.lan/reports/{report.id}"
    query = parse_qs(parts.query)
    signer = LinkSigner.from_settings(settings)
    assert signer.verify(report.id, query["exp"][0], query["sig"][0], now=NOW.timestamp())
    assert int(query["exp"][0]) == int(NOW.timestamp()) + settings.api.link_ttl_s


async def test_alert_without_dashboard_becomes_an_organisation_annotation(
    grafana: FakeGrafana, settings: _Settings
) -> None:
    report = sample_report(alert=sample_alert(dashboard_uid=None, panel_id=None))
    async with grafana.client() as client:
        delivered = await deliver(report, client, settings, now=NOW)

    assert delivered.annotation is not None
    stored = grafana.annotations[delivered.annotation.id]
    assert stored["dashboardUID"] is None
    assert stored["panelId"] == 0
    assert delivered.annotation.dashboard_uid is None


async def test_deleted_dashboard_falls_back_to_an_organisation_annotation(
    grafana: FakeGrafana, settings: _Settings
) -> None:
    report = sample_report(alert=sample_alert(dashboard_uid="gone-dashboard", panel_id=2))
    async with grafana.client() as client:
        delivered = await deliver(report, client, settings, now=NOW)

    assert delivered.delivery == DeliveryState.delivered
    assert len(grafana.annotations) == 1
    assert next(iter(grafana.annotations.values()))["dashboardUID"] is None


async def test_resolve_extends_the_same_annotation_instead_of_adding_one(
    grafana: FakeGrafana, settings: _Settings
) -> None:
    report = sample_report()
    ends_at = START + timedelta(minutes=37)
    async with grafana.client() as client:
        delivered = await deliver(report, client, settings, now=NOW)
        resolved = await deliver_resolve(delivered, client, settings, ends_at=ends_at, now=ends_at)

    assert len(grafana.annotations) == 1
    assert resolved.annotation == delivered.annotation
    assert delivered.annotation is not None
    stored = grafana.annotations[delivered.annotation.id]
    assert stored["time"] == int(START.timestamp() * 1000)
    assert stored["timeEnd"] == int(ends_at.timestamp() * 1000)
    assert resolved.resolved_at == ends_at
    assert [r.method for r in grafana.requests] == ["GET", "POST", "PATCH"]


async def test_grafana_503_raises_a_transient_error_with_the_state_to_store_then_a_retry_delivers(
    grafana: FakeGrafana, settings: _Settings
) -> None:
    report = sample_report()
    grafana.fail_next(10, status=503)
    async with grafana.client() as client:
        with pytest.raises(DeliveryError) as failure:
            await deliver(report, client, settings, now=NOW)
        grafana._faults.clear()
        assert failure.value.transient
        pending = failure.value.report
        assert pending.delivery == DeliveryState.pending
        assert pending.delivery_error is not None
        assert "503" in pending.delivery_error
        assert grafana.annotations == {}

        delivered = await deliver(pending, client, settings, now=NOW + timedelta(seconds=5))

    assert delivered.delivery == DeliveryState.delivered
    assert delivered.delivery_error is None
    assert len(grafana.annotations) == 1


async def test_unreachable_grafana_is_transient(settings: _Settings, grafana: FakeGrafana) -> None:
    grafana.fail_next(10, exception=httpx.ConnectError("connection refused"))
    async with grafana.client() as client:
        with pytest.raises(DeliveryError) as failure:
            await deliver(sample_report(), client, settings, now=NOW)
    assert failure.value.transient
    assert failure.value.report.delivery == DeliveryState.pending


async def test_rejected_credentials_fail_delivery_for_good(settings: _Settings, grafana: FakeGrafana) -> None:
    async with grafana.client(token="glsa_wrong") as client:
        with pytest.raises(DeliveryError) as failure:
            await deliver(sample_report(), client, settings, now=NOW)
    assert not failure.value.transient
    assert failure.value.report.delivery == DeliveryState.failed
    assert "glsa_wrong" not in str(failure.value)
    assert "glsa_wrong" not in (failure.value.report.delivery_error or "")


async def test_a_worker_retry_after_a_lost_save_finds_its_annotation_and_makes_no_duplicate(
    grafana: FakeGrafana, settings: _Settings
) -> None:
    report = sample_report()
    async with grafana.client() as client:
        first = await deliver(report, client, settings, now=NOW)
        # the worker died before saving `first`: the retried job starts again from the stored report
        retried = await deliver(report, client, settings, now=NOW + timedelta(seconds=30))

    assert len(grafana.annotations) == 1
    assert retried.annotation is not None
    assert first.annotation is not None
    assert retried.annotation.id == first.annotation.id
    assert grafana.annotations[first.annotation.id]["timeEnd"] == int((NOW + timedelta(seconds=30)).timestamp() * 1000)


async def test_redelivering_a_delivered_report_patches_instead_of_creating(
    grafana: FakeGrafana, settings: _Settings
) -> None:
    async with grafana.client() as client:
        first = await deliver(sample_report(), client, settings, now=NOW)
        again = await deliver(first, client, settings, now=NOW)
    assert again.annotation == first.annotation
    assert [r.method for r in grafana.requests] == ["GET", "POST", "PATCH"]


async def test_another_reports_annotation_is_not_mistaken_for_ours(grafana: FakeGrafana, settings: _Settings) -> None:
    grafana.add_annotation("someone else's", ["sre-triage", "HostMemoryPressure", "report:other"], 1)
    async with grafana.client() as client:
        delivered = await deliver(sample_report(), client, settings, now=NOW)
    assert len(grafana.annotations) == 2
    assert delivered.annotation is not None
    assert delivered.annotation.id != 1


async def test_without_grafana_delivery_is_disabled(settings: _Settings) -> None:
    delivered = await deliver(sample_report(), None, settings, now=NOW)
    assert delivered.delivery == DeliveryState.disabled
    assert delivered.annotation is None


def test_tags_carry_alertname_severity_and_report_id_without_duplicates() -> None:
    report = sample_report(alert=sample_alert(labels={"severity": "sre-triage"}))
    assert annotation_tags(report) == ["sre-triage", "HostMemoryPressure", f"report:{report.id}"]


def test_retry_delay_backs_off_exponentially_up_to_five_minutes() -> None:
    assert [retry_delay_s(n) for n in (1, 2, 3, 4)] == [5.0, 10.0, 20.0, 40.0]
    assert retry_delay_s(20) == 300.0
