"""Payload fuzz: whatever an authenticated sender posts, the webhook answers 202 or a JSON 4xx, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.intake import bearer, grafana_alert, grafana_notification
from triage.settings import load_settings
from webhook.app import create_app, intake_routers


@pytest.fixture(scope="module")
def client(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    tmp = tmp_path_factory.mktemp("fuzz")
    app_settings = load_settings(
        webhook={"token": "test-webhook-token"},
        redis={"redis_url": redis_url},
        storage={"database_url": f"sqlite:///{tmp}/reports.db"},
        knowledge={"chroma_dir": tmp / "chroma"},
    )
    with TestClient(create_app(app_settings, routers=intake_routers)) as test_client:
        yield test_client


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
times = st.sampled_from(
    [
        "2026-11-26T10:00:00Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "2018-08-03T09:52:26.739266876+02:00",
        "2026-11-26T10:00:00.١٢٣Z",
        "yesterday",
        "",
        "9" * 30,
    ]
)
# Characters that pass str.isdigit() without being ASCII digits (superscripts, Arabic-Indic, full-width, maths).
unicode_digits = st.text(alphabet="0123456789²³¹٠١٢٣߁०१１２𝟗⁰₃", min_size=1, max_size=12)
panel_ids = unicode_digits | st.text(max_size=12)
alert_fields = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["firing", "resolved", "pending", ""]) | json_values,
        "labels": st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=5) | json_values,
        "annotations": st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=3) | json_values,
        "startsAt": times | json_values,
        "endsAt": times | json_values,
        "fingerprint": st.text(max_size=30) | json_values,
        "values": st.dictionaries(st.text(max_size=5), st.floats(allow_nan=False) | st.none()) | json_values,
        "dashboardURL": st.text(max_size=60) | st.just("http://g/d/abc?viewPanel=99999999999999999"),
        "panelURL": st.text(max_size=60) | panel_ids.map(lambda p: f"http://g/d/abc?viewPanel={p}"),
    },
)


def with_reserved_keys(alert: dict[str, Any], panel: str | None, vmid: str | None) -> dict[str, Any]:
    """Grafana's reserved ``__panelId__`` annotation and a vmid label, with whatever text the sender writes."""
    annotations = alert.get("annotations")
    labels = alert.get("labels")
    if panel is not None and isinstance(annotations, dict):
        alert = {**alert, "annotations": {**annotations, "__panelId__": panel}}
    if vmid is not None and isinstance(labels, dict):
        alert = {**alert, "labels": {**labels, "vmid": vmid}}
    return alert


fuzzed_alerts = st.builds(
    with_reserved_keys,
    st.builds(lambda fields: {**grafana_alert(), **fields}, alert_fields),
    st.none() | panel_ids,
    st.none() | unicode_digits,
)
notifications = st.builds(
    lambda alerts, extra, version: {**grafana_notification(*alerts), **extra, "version": version},
    st.lists(fuzzed_alerts, max_size=3),
    st.dictionaries(
        st.sampled_from(["receiver", "status", "groupKey", "truncatedAlerts", "orgId", "groupLabels", "alerts"]),
        json_values,
        max_size=2,
    ),
    st.sampled_from(["1", "4", 1, None]),
)


def check(response: Any) -> None:
    assert response.status_code in (202, 413, 415, 422), response.text
    if response.status_code != 202:
        error = response.json()["error"]
        assert error["status"] == response.status_code and error["message"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=notifications, path=st.sampled_from(["/webhook/grafana", "/webhook/alertmanager"]))
def test_structured_payload_fuzz_never_gets_a_500(client: TestClient, body: dict[str, Any], path: str) -> None:
    check(
        client.post(path, content=json.dumps(body).encode(), headers={**bearer(), "Content-Type": "application/json"})
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values | st.binary(max_size=200).map(lambda b: {"raw": b.hex()}))
def test_arbitrary_json_never_gets_a_500(client: TestClient, body: Any) -> None:
    check(
        client.post(
            "/webhook/grafana",
            content=json.dumps(body).encode(),
            headers={**bearer(), "Content-Type": "application/json"},
        )
    )


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_arbitrary_bytes_never_get_a_500(client: TestClient, raw: bytes) -> None:
    check(client.post("/webhook/alertmanager", content=raw, headers={**bearer(), "Content-Type": "application/json"}))
