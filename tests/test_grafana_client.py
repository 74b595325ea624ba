"""GrafanaClient against the fake Grafana: wire formats, annotations round trip, auth, retries, secrets."""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.grafana import BASE_URL, FakeGrafana
from tools.errors import SourceAuthError, SourceConnectError, SourceError, SourceMalformedResponse, SourceServerError
from tools.grafana import GrafanaClient

T0_MS = 1_714_557_600_000


@pytest.fixture
def grafana() -> FakeGrafana:
    fake = FakeGrafana(token="glsa_secret_token_123")
    fake.add_dashboard(
        "node",
        "Node exporter",
        tags=["linux"],
        panels=[
            {"id": 2, "title": "CPU", "type": "timeseries", "targets": [{"expr": "rate(node_cpu_seconds_total[5m])"}]},
            {
                "id": 10,
                "type": "row",
                "title": "Disk",
                "panels": [
                    {
                        "id": 11,
                        "title": "Disk full",
                        "type": "stat",
                        "targets": [{"expr": "node_filesystem_avail_bytes"}],
                    }
                ],
            },
        ],
    )
    fake.add_rule(
        "disk-full",
        "DiskAlmostFull",
        expr='node_filesystem_avail_bytes{mountpoint="/"} / node_filesystem_size_bytes < 0.1',
        labels={"severity": "warning"},
        annotations={"runbook_url": "https://runbooks.lan/disk"},
        state="firing",
        alerts=[{"labels": {"instance": "10.0.0.12:9100", "alertname": "DiskAlmostFull"}, "value": "0.05"}],
    )
    fake.add_rule("cpu-high", "HighCPU", expr="avg(rate(node_cpu_seconds_total[5m])) > 0.9", labels=None)
    return fake


async def test_annotation_region_round_trips_through_create_find_and_patch(grafana: FakeGrafana) -> None:
    async with grafana.client() as client:
        annotation_id = await client.create_annotation(
            "Triage report: disk full", ["sre-triage", "alert:DiskAlmostFull"], T0_MS, T0_MS + 60_000, "node", 11
        )
        await client.patch_annotation(annotation_id, text="Triage report (updated)", time_end_ms=T0_MS + 120_000)
        found = await client.find_annotations(
            tags=["sre-triage"], from_ms=T0_MS - 1, to_ms=T0_MS + 1, dashboard_uid="node"
        )

    assert [a.id for a in found] == [annotation_id]
    annotation = found[0]
    assert annotation.text == "Triage report (updated)"
    assert (annotation.time_ms, annotation.time_end_ms) == (T0_MS, T0_MS + 120_000)
    assert annotation.tags == ["sre-triage", "alert:DiskAlmostFull"]
    assert (annotation.dashboard_uid, annotation.panel_id) == ("node", 11)
    sent = json.loads(grafana.requests[0].content)
    assert sent == {
        "text": "Triage report: disk full",
        "tags": ["sre-triage", "alert:DiskAlmostFull"],
        "time": T0_MS,
        "timeEnd": T0_MS + 60_000,
        "dashboardUID": "node",
        "panelId": 11,
    }


async def test_find_annotations_sends_repeated_tags_and_millisecond_window(grafana: FakeGrafana) -> None:
    grafana.add_annotation("deploy", ["deploy", "jellyfin"], T0_MS - 3_600_000)
    grafana.add_annotation("other", ["deploy"], T0_MS)
    async with grafana.client() as client:
        both = await client.find_annotations(
            tags=["deploy", "jellyfin"], from_ms=T0_MS - 7_200_000, to_ms=T0_MS, limit=5
        )
        any_tag = await client.find_annotations(tags=["deploy", "jellyfin"], match_any=True, limit=5)

    assert [a.text for a in both] == ["deploy"]
    assert [a.text for a in any_tag] == ["other", "deploy"]
    params = grafana.requests[0].url.params
    assert params.get_list("tags") == ["deploy", "jellyfin"]
    assert (params["from"], params["to"], params["limit"], params["type"]) == (
        str(T0_MS - 7_200_000),
        str(T0_MS),
        "5",
        "annotation",
    )


async def test_alert_state_annotations_are_left_out_unless_asked_for(grafana: FakeGrafana) -> None:
    grafana.add_annotation("user note", ["ops"], T0_MS)
    grafana.add_annotation("", [], T0_MS + 1, alertId=7, newState="alerting")
    async with grafana.client() as client:
        notes = await client.find_annotations()
        alerts = await client.find_annotations(kind="alert")
        both = await client.find_annotations(kind=None)
    assert [a.text for a in notes] == ["user note"]
    assert [a.alert_id for a in alerts] == [7]
    assert len(both) == 2
    assert "type" not in grafana.requests[2].url.params


async def test_patch_leaves_unnamed_fields_unchanged(grafana: FakeGrafana) -> None:
    annotation_id = grafana.add_annotation("first", ["a"], T0_MS)
    async with grafana.client() as client:
        await client.patch_annotation(annotation_id, tags=["a", "b"])
    stored = grafana.annotations[annotation_id]
    assert (stored["text"], stored["tags"], stored["time"]) == ("first", ["a", "b"], T0_MS)
    assert json.loads(grafana.requests[0].content) == {"tags": ["a", "b"]}


async def test_annotation_on_unknown_dashboard_is_an_http_error_naming_the_reason(grafana: FakeGrafana) -> None:
    async with grafana.client() as client:
        with pytest.raises(SourceError) as caught:
            await client.create_annotation("x", [], T0_MS, dashboard_uid="nope")
    assert "Invalid dashboard UID" in str(caught.value)
    assert grafana.annotations == {}


async def test_provisioned_rules_are_typed_with_their_queries(grafana: FakeGrafana) -> None:
    async with grafana.client() as client:
        rules = await client.alert_rules()
        one = await client.alert_rule("disk-full")
        missing = await client.alert_rule("no-such-rule")

    assert [r.uid for r in rules] == ["disk-full", "cpu-high"]
    assert one is not None and one.title == "DiskAlmostFull"
    assert one.data[0].expr is not None and "node_filesystem_avail_bytes" in one.data[0].expr
    assert one.data[0].relative_from_s == 600
    assert one.labels == {"severity": "warning"} and one.for_ == "5m"
    assert rules[1].labels == {}
    assert missing is None


async def test_rule_uid_cannot_escape_its_path_segment(grafana: FakeGrafana) -> None:
    async with grafana.client() as client:
        assert await client.alert_rule("../../api/admin/users?x=1") is None
    assert grafana.requests == []  # not a UID: nothing to ask Grafana


async def test_rule_states_and_active_alerts_come_from_the_prometheus_compatible_api(grafana: FakeGrafana) -> None:
    async with grafana.client() as client:
        states = await client.rule_states()
        alerts = await client.active_alerts()

    firing = next(s for s in states if s.name == "DiskAlmostFull")
    assert (firing.state, firing.health, firing.group, firing.folder, firing.duration_s) == (
        "firing",
        "ok",
        "hosts",
        "Infrastructure",
        300,
    )
    assert firing.alerts[0].labels["instance"] == "10.0.0.12:9100"
    assert firing.last_evaluation is not None
    assert [a.value for a in alerts] == ["0.05"]


async def test_prometheus_style_error_status_becomes_a_query_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "error", "errorType": "bad_data", "error": "invalid rule group"})

    async with GrafanaClient(BASE_URL, token="t0ken-value", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(SourceError, match="invalid rule group"):
            await client.rule_states()


async def test_dashboard_flattens_rows_into_panels_with_queries(grafana: FakeGrafana) -> None:
    async with grafana.client() as client:
        dashboard = await client.dashboard("node")
        missing = await client.dashboard("gone")
    assert dashboard is not None
    assert (dashboard.title, dashboard.url, dashboard.folder_title) == (
        "Node exporter",
        "/d/node/node-exporter",
        "Infrastructure",
    )
    assert [(p.id, p.title, p.queries) for p in dashboard.panels] == [
        (2, "CPU", ["rate(node_cpu_seconds_total[5m])"]),
        (11, "Disk full", ["node_filesystem_avail_bytes"]),
    ]
    assert missing is None


async def test_health_needs_no_token(grafana: FakeGrafana) -> None:
    async with grafana.client(token="wrong") as client:
        health = await client.health()
    assert (health.database, health.version) == ("ok", "11.3.0")


async def test_wrong_token_is_an_auth_error_without_the_token(grafana: FakeGrafana) -> None:
    async with grafana.client(token="glsa_wrong_but_secret") as client:
        with pytest.raises(SourceAuthError) as caught:
            await client.alert_rules()
    error = caught.value
    assert error.status_code == 401
    for text in (str(error), error.body_excerpt, error.url):
        assert "glsa_wrong_but_secret" not in text
    assert grafana.request_count == 1, "auth errors are not retried"


async def test_two_503s_are_retried_then_the_answer_arrives(grafana: FakeGrafana) -> None:
    grafana.fail_next(2, status=503)
    async with grafana.client(retries=2) as client:
        rules = await client.alert_rules()
        assert client.stats.retries == 2
    assert len(rules) == 2
    assert grafana.request_count == 3


async def test_503s_beyond_the_retry_budget_raise_a_server_error(grafana: FakeGrafana) -> None:
    grafana.fail_next(3, status=503)
    async with grafana.client(retries=1) as client:
        with pytest.raises(SourceServerError) as caught:
            await client.alert_rules()
    assert caught.value.status_code == 503
    assert grafana.request_count == 2


async def test_connection_refused_is_retried_and_reported_as_connect_error(grafana: FakeGrafana) -> None:
    grafana.fail_next(5, exception=httpx.ConnectError("[Errno 111] Connection refused"))
    async with grafana.client(retries=2) as client:
        with pytest.raises(SourceConnectError) as caught:
            await client.health()
    assert grafana.request_count == 3
    assert caught.value.source == "grafana"


async def test_html_instead_of_json_is_a_malformed_response() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>login</html>", headers={"content-type": "text/html"})

    async with GrafanaClient(BASE_URL, token="t0ken-value", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(SourceMalformedResponse):
            await client.alert_rules()


async def test_wrongly_shaped_rules_are_a_malformed_response() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"title": "no uid"}])

    async with GrafanaClient(BASE_URL, token="t0ken-value", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(SourceMalformedResponse, match="AlertRule"):
            await client.alert_rules()


async def test_org_id_header_selects_the_organisation(grafana: FakeGrafana) -> None:
    grafana.token_orgs[grafana.token] = 3  # a service account of organisation 3
    async with grafana.client(org_id=3) as client:
        await client.alert_rules()
    assert grafana.requests[0].headers["x-grafana-org-id"] == "3"


async def test_fake_delay_slows_every_request(grafana: FakeGrafana) -> None:
    grafana.delay_s = 0.05
    async with grafana.client() as client:
        started = time.monotonic()
        await client.health()
        await client.health()
    assert time.monotonic() - started >= 0.1


def test_tls_is_verified_by_default_and_a_ca_file_is_honoured(tmp_path: Path) -> None:
    default = GrafanaClient("https://grafana.lan", token="t0ken-value")
    assert default._client._transport._pool._ssl_context.verify_mode == ssl.CERT_REQUIRED  # type: ignore[attr-defined]
    missing = tmp_path / "missing-ca.pem"
    with pytest.raises(OSError):
        GrafanaClient("https://grafana.lan", token="t0ken-value", ca_file=str(missing))
