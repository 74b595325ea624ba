"""The black-box probe's hostile inputs, replayed: each is refused with a 4xx that names the problem, or accepted
and triaged with the bad field ignored; never a 500, never an accepted alert left untriaged."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from reports.models import ReportStatus
from reports.payloads import Source, parse_alerts
from reports.store import open_store
from tests.support.intake import api, bearer, grafana_alert, grafana_notification, sign
from tests.test_worker import run_burst
from triage.settings import Settings
from webhook.app import all_routers

JSON = {"Content-Type": "application/json"}
UNICODE_DIGITS = ["²", "٣", "１２", "߁", "𝟗"]


async def post(settings: Settings, body: dict[str, Any], path: str = "/webhook/grafana") -> Any:
    async with api(settings) as (_, client):
        return await client.post(path, content=json.dumps(body).encode(), headers={**JSON, **bearer()})


async def stored_report(settings: Settings, key: str) -> Any:
    store = open_store(settings.storage.database_url)
    await store.init()
    try:
        return await store.get(key)
    finally:
        await store.close()


@pytest.mark.parametrize("starts_at", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1900-01-01T00:00:00Z"])
@pytest.mark.parametrize("path", ["/webhook/grafana", "/webhook/alertmanager"])
async def test_an_impossible_start_time_is_triaged_around_the_time_received(
    make_settings: Any, redis: Redis, starts_at: str, path: str
) -> None:
    settings = make_settings()
    body = grafana_notification(grafana_alert("Odd", fingerprint="odd", starts_at=starts_at))
    if path.endswith("alertmanager"):
        body["version"] = "4"
    assert (await post(settings, body, path)).status_code == 202
    worker = await run_burst(settings)
    resent = await post(settings, body, path)

    assert worker.jobs_failed == 0
    source: Source = "alertmanager" if path.endswith("alertmanager") else "grafana"
    report = await stored_report(settings, parse_alerts(source, body)[0].occurrence_key)
    assert report is not None and report.status is ReportStatus.triaged
    assert report.alert.starts_at == report.created_at  # the window is anchored where the alert was received
    assert resent.json()["duplicates"] == 1  # the sender's start time is still the occurrence's identity


async def test_an_end_time_in_year_9999_means_no_end(make_settings: Any, redis: Redis) -> None:
    body = grafana_notification(grafana_alert(ends_at="9999-12-31T23:59:59Z"))
    response = await post(make_settings(), body)
    assert response.status_code == 202
    assert parse_alerts("grafana", body)[0].ends_at is None


@pytest.mark.parametrize("digit", UNICODE_DIGITS)
async def test_a_unicode_digit_panel_id_is_ignored_and_the_notification_accepted(
    make_settings: Any, redis: Redis, digit: str
) -> None:
    by_label = grafana_alert("ByLabel", fingerprint="by-label", __panelId__=digit)
    by_url = {**grafana_alert("ByUrl", fingerprint="by-url"), "panelURL": f"http://g/d/abc?viewPanel={digit}"}
    valid = grafana_alert("Valid", fingerprint="valid", __panelId__="7")
    body = grafana_notification(by_label, by_url, valid)
    response = await post(make_settings(), body)
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 3
    alerts = parse_alerts("grafana", body)
    assert [a.panel_id for a in alerts] == [None, None, 7]
    assert alerts[1].dashboard_uid == "abc"


@pytest.mark.parametrize("exp", ["%C2%B2", "%D9%A3", "1%C2%B2", "", "99999999999999999999"])
async def test_a_signed_link_with_a_non_ascii_expiry_is_refused_not_a_500(make_settings: Any, exp: str) -> None:
    async with api(make_settings(), routers=all_routers) as (_, client):
        response = await client.get(f"/reports/x?exp={exp}&sig=00")
        json_response = await client.get(f"/reports/x.json?exp={exp}&sig=%C2%B2")
    assert response.status_code in (401, 403, 404), response.text
    assert json_response.status_code in (401, 403, 404), json_response.text


def raw_header(value: str) -> bytes:
    """The header bytes as a client may send them: Latin-1 when possible (``²`` is one byte, 0xB2), else UTF-8."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode()


@pytest.mark.parametrize(
    "stamp", ["²", "¹⁷⁰⁰⁰⁰⁰⁰⁰⁰", "١٧٠٠٠٠٠٠٠٠", "１７００００００００", "+1700000000", "1_700_000_000"]
)
async def test_an_hmac_timestamp_with_non_ascii_digits_is_a_401(make_settings: Any, redis: Redis, stamp: str) -> None:
    header = "X-Grafana-Alerting-Signature-Timestamp"
    settings = make_settings(
        webhook={"token": None, "hmac_secret": "hmac-shared-secret", "hmac_timestamp_header": header}
    )
    body = json.dumps(grafana_notification()).encode()
    headers = [
        (b"Content-Type", b"application/json"),
        (b"X-Grafana-Alerting-Signature", sign("hmac-shared-secret", body, stamp).encode()),
        (header.encode(), raw_header(stamp)),
    ]
    async with api(settings) as (_, client):
        response = await client.post("/webhook/grafana", content=body, headers=headers)
    assert response.status_code == 401, response.text
    assert "Unix time" in response.json()["error"]["message"]


async def test_an_ascii_hmac_timestamp_still_passes(make_settings: Any, redis: Redis) -> None:
    header = "X-Grafana-Alerting-Signature-Timestamp"
    settings = make_settings(
        webhook={"token": None, "hmac_secret": "hmac-shared-secret", "hmac_timestamp_header": header}
    )
    body = json.dumps(grafana_notification()).encode()
    stamp = str(int(time.time()))
    headers = {**JSON, "X-Grafana-Alerting-Signature": sign("hmac-shared-secret", body, stamp), header: stamp}
    async with api(settings) as (_, client):
        assert (await client.post("/webhook/grafana", content=body, headers=headers)).status_code == 202


@pytest.mark.parametrize("vmid", ["²", "٣", "１０５"])
async def test_an_alert_with_a_unicode_digit_vmid_is_triaged(make_settings: Any, redis: Redis, vmid: str) -> None:
    settings = make_settings()
    body = grafana_notification(grafana_alert("GuestDown", fingerprint="guest", vmid=vmid))
    assert (await post(settings, body)).status_code == 202
    worker = await run_burst(settings)
    assert worker.jobs_failed == 0
    report = await stored_report(settings, parse_alerts("grafana", body)[0].occurrence_key)
    assert report is not None and report.status is ReportStatus.triaged


async def test_a_resolve_with_millisecond_start_reaches_the_microsecond_firing_report(
    make_settings: Any, redis: Redis
) -> None:
    settings = make_settings()
    # Alertmanager's webhook sends microseconds; a resolve rebuilt from its API has milliseconds
    firing = grafana_notification(
        grafana_alert("Precise", fingerprint="precise", starts_at="2026-11-26T10:00:00.123456Z")
    )
    resolved = grafana_notification(
        grafana_alert(
            "Precise",
            fingerprint="precise",
            status="resolved",
            starts_at="2026-11-26T10:00:00.123Z",
            ends_at="2026-11-26T10:09:00Z",
        )
    )
    for body in (firing, resolved):
        body["version"] = "4"
        assert (await post(settings, body, "/webhook/alertmanager")).status_code == 202
        await run_burst(settings)

    key = parse_alerts("alertmanager", firing)[0].occurrence_key
    assert parse_alerts("alertmanager", resolved)[0].occurrence_key == key
    report = await stored_report(settings, key)
    assert report is not None and report.status is ReportStatus.resolved
    assert report.alert.starts_at.microsecond == 123456  # the firing notification's own time is kept
    store = open_store(settings.storage.database_url)
    await store.init()
    try:
        assert await store.count() == 1
    finally:
        await store.close()


@pytest.mark.parametrize(
    "authorization",
    [b"Basic \xb2", b"Basic \xb2\xb2\xb2\xb2", b"Bearer \xb2", b"Basic dXNlcjpwdw==\xb2", b"Basic =", b"\xb2"],
)
async def test_a_non_ascii_authorization_header_is_a_401(
    make_settings: Any, redis: Redis, authorization: bytes
) -> None:
    settings = make_settings(webhook={"token": None, "basic_user": "grafana", "basic_password": "basic-password"})
    body = json.dumps(grafana_notification()).encode()
    headers = [(b"Content-Type", b"application/json"), (b"Authorization", authorization)]
    async with api(settings, routers=all_routers) as (_, client):
        webhook = await client.post("/webhook/grafana", content=body, headers=headers)
        reports = await client.get("/reports", headers=[(b"Authorization", authorization)])
    assert webhook.status_code == 401, webhook.text
    assert reports.status_code == 401, reports.text


HOSTILE_VALUES = ["²", "%C2%B2", "..", "%2e%2e", "x" * 3000, "-1", "1e9", "NaN", "%00", "١٢"]
GET_PATHS = ["/", "/ask/reports", "/chat/{v}", "/reports", "/reports/{v}", "/reports/{v}.json", "/reports/{v}.md"]
GET_PARAMS = ["", "?exp={v}&sig={v}", "?limit={v}&offset={v}", "?q={v}&status={v}&alertname={v}"]
HOSTILE_HEADERS: list[list[tuple[bytes, bytes]]] = [
    [],
    [(b"authorization", b"Bearer test-api-token")],
    [(b"authorization", b"Bearer \xb2")],
    [(b"cookie", b"session=\xb2; x=\xb2")],
    [(b"accept", b"text/html\xb2")],
]


async def test_no_page_or_api_route_answers_a_hostile_value_with_a_500(make_settings: Any, redis: Redis) -> None:
    """Every GET route, with and without the API token, with hostile path segments, query values and headers."""
    failures = []
    requests = 0
    async with api(make_settings(), routers=all_routers) as (_, client):
        for path, params, headers, value in itertools.product(GET_PATHS, GET_PARAMS, HOSTILE_HEADERS, HOSTILE_VALUES):
            url = (path + params).replace("{v}", value)
            response = await client.get(url, headers=headers)
            requests += 1
            if response.status_code >= 500:
                failures.append((url[:80], headers, response.status_code))
    assert requests == 1400 and not failures, failures[:10]
