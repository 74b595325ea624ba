"""Grafana's own habits at the webhook: the contact-point Test button, PUT, and the organisation of an alert."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from reports.models import DeliveryState, ReportStatus
from reports.payloads import parse_alerts
from reports.store import StoreError
from tests.support.intake import api, bearer, grafana_alert, grafana_notification, load_payload, queued_job_ids


@pytest.fixture
async def intake(make_settings: Any, redis: Redis) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with api(make_settings()) as (app, client):
        yield app, client


async def test_the_contact_point_test_is_answered_with_a_receipt_and_not_triaged(
    intake: tuple[FastAPI, httpx.AsyncClient], redis: Redis
) -> None:
    app, client = intake

    response = await client.post(
        "/webhook/grafana", json=load_payload("grafana_test_notification.json"), headers=bearer()
    )

    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["jobs"]) == (0, [])
    assert await queued_job_ids(redis) == []
    [test] = body["tests"]
    report = await app.state.store.get(test["report_id"])
    assert report is not None
    assert report.status == ReportStatus.test
    assert report.delivery == DeliveryState.skipped
    assert report.llm is None and report.evidence == []
    assert "Test notification received from the Grafana contact point sre-triage" in report.summary
    assert test["url"] == f"/reports/{report.id}"


async def test_a_custom_test_with_other_labels_is_still_recognised(
    intake: tuple[FastAPI, httpx.AsyncClient], redis: Redis
) -> None:
    _, client = intake
    payload = load_payload("grafana_test_notification.json")
    # Grafana's "custom" test lets the user override labels; the value string still marks the test alert
    payload["alerts"][0]["labels"] = {"alertname": "TestAlert", "instance": "pve1", "severity": "critical"}

    response = await client.post("/webhook/grafana", json=payload, headers=bearer())

    assert response.status_code == 202
    assert len(response.json()["tests"]) == 1
    assert await queued_job_ids(redis) == []


async def test_a_real_alert_named_like_the_test_is_triaged(
    intake: tuple[FastAPI, httpx.AsyncClient], redis: Redis
) -> None:
    _, client = intake
    alert = grafana_alert("TestAlert")  # instance pve1:9100, no test value string

    response = await client.post("/webhook/grafana", json=grafana_notification(alert), headers=bearer())

    assert response.json()["accepted"] == 1
    assert "tests" not in response.json()
    assert len(await queued_job_ids(redis)) == 1


async def test_put_is_accepted_like_post(intake: tuple[FastAPI, httpx.AsyncClient], redis: Redis) -> None:
    _, client = intake

    response = await client.put("/webhook/grafana", json=grafana_notification(), headers=bearer())

    assert response.status_code == 202
    assert response.json()["accepted"] == 1
    assert len(await queued_job_ids(redis)) == 1


def test_the_alert_keeps_its_organisation_and_grafana_links() -> None:
    alert = grafana_alert("DiskFull")
    alert["generatorURL"] = "http://grafana.lan/alerting/grafana/rule-1/view?orgId=3"
    alert["silenceURL"] = (
        "http://grafana.lan/alerting/silence/new?alertmanager=grafana&matcher=alertname%3DDiskFull&orgId=3"
    )
    alert["dashboardURL"] = "http://grafana.lan/d/node?orgId=3"
    alert["panelURL"] = "http://grafana.lan/d/node?orgId=3&viewPanel=7"

    [parsed] = parse_alerts("grafana", grafana_notification(alert, orgId=1, externalURL="http://grafana.lan/"))

    # the payload's orgId is the contact point's organisation; the alert's own links say where the rule lives
    assert parsed.org_id == 3
    assert parsed.silence_url == alert["silenceURL"]
    assert (parsed.dashboard_uid, parsed.panel_id) == ("node", 7)
    assert parsed.grafana_url == "http://grafana.lan/"


@pytest.mark.parametrize(
    ("alert_fields", "payload_org", "expected"),
    [({"orgId": 4}, 1, 4), ({}, 2, 2), ({"generatorURL": ""}, None, None)],
)
def test_the_organisation_falls_back_to_the_payload(
    alert_fields: dict[str, Any], payload_org: int | None, expected: int | None
) -> None:
    alert = {**grafana_alert(), **alert_fields}

    [parsed] = parse_alerts("grafana", grafana_notification(alert, orgId=payload_org))

    assert parsed.org_id == expected


async def test_a_test_notification_is_answered_503_when_the_store_cannot_take_it(
    intake: tuple[FastAPI, httpx.AsyncClient], redis: Redis
) -> None:
    app, client = intake
    store = app.state.store

    async def broken(report: object) -> None:
        raise StoreError("disk full")

    store.save = broken  # the store fails as a full disk would; Grafana shows the error and the user retries

    response = await client.post(
        "/webhook/grafana", json=load_payload("grafana_test_notification.json"), headers=bearer()
    )

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert await queued_job_ids(redis) == []
