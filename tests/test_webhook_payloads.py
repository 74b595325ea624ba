"""Payload parsing and normalisation: the senders' official examples become the Alert model the worker gets."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from reports.models import AlertStatus, labels_fingerprint
from reports.payloads import PayloadError, normalise, parse_alerts, parse_payload, parse_payload_json
from tests.support.intake import grafana_alert, grafana_notification, load_payload


def test_grafana_documentation_example_normalises_every_alert() -> None:
    alerts = parse_alerts("grafana", load_payload("grafana_docs_example.json"))

    assert [a.alertname for a in alerts] == ["High memory usage", "High CPU usage"]
    first = alerts[0]
    assert first.fingerprint == "c6eadffa33fcdf37"
    assert first.status is AlertStatus.firing
    assert first.starts_at == datetime(2021, 10, 12, 7, 51, 3, 157076, tzinfo=UTC)
    assert first.ends_at is None  # Grafana's zero endsAt means "still firing"
    assert first.values == {"B": 44.23943737541908, "C": 1.0}
    assert first.annotations["runbook_url"] == "https://myrunbook.com/runbook/1234"
    assert first.receiver == "My Super Webhook"
    assert first.source == "grafana"
    assert first.dashboard_uid is None and first.panel_id is None


def test_grafana_dashboard_and_panel_come_from_the_urls() -> None:
    payload = parse_payload("grafana", load_payload("grafana_source_dashboard_truncated.json"))
    alerts = parse_alerts("grafana", load_payload("grafana_source_dashboard_truncated.json"))

    assert payload.truncated_alerts == 1
    assert [a.dashboard_uid for a in alerts] == ["abcd", "abcd"]
    # Grafana's own test uses a non-numeric panel id; only a number is a panel id we can annotate
    assert [a.panel_id for a in alerts] == [None, 12]
    assert alerts[0].values == {}  # "values": null


def test_grafana_reserved_annotations_name_the_dashboard_and_panel() -> None:
    alert = grafana_alert()
    alert["annotations"].update({"__dashboardUid__": "pve-node", "__panelId__": "7"})

    (parsed,) = parse_alerts("grafana", grafana_notification(alert))

    assert (parsed.dashboard_uid, parsed.panel_id) == ("pve-node", 7)


def test_alertmanager_example_normalises_with_its_fingerprint() -> None:
    (alert,) = parse_alerts("alertmanager", load_payload("alertmanager_v4_example.json"))

    assert alert.fingerprint == "1a30ba71cca2921f"
    assert alert.alertname == "ProbeFailure"
    assert alert.severity == "critical"
    assert alert.group_key == '{}/{severity="critical"}:{alertname="ProbeFailure"}'
    assert alert.source == "alertmanager"


def test_alertmanager_nanosecond_times_and_missing_fingerprint_are_accepted() -> None:
    data = load_payload("alertmanager_v4_no_fingerprint_nanos.json")

    (alert,) = parse_alerts("alertmanager", data)

    assert alert.starts_at == datetime(2018, 8, 3, 7, 52, 26, 739266, tzinfo=UTC)
    assert alert.fingerprint == labels_fingerprint(data["alerts"][0]["labels"])


def test_unknown_fields_are_ignored() -> None:
    body = grafana_notification(grafana_alert(), futureField={"nested": [1, 2]})
    body["alerts"][0]["anotherNewField"] = "x"

    assert len(parse_alerts("grafana", body)) == 1


def test_resolved_and_firing_of_one_occurrence_share_the_occurrence_key() -> None:
    firing = parse_alerts("grafana", grafana_notification(grafana_alert()))[0]
    resolved = parse_alerts(
        "grafana", grafana_notification(grafana_alert(status="resolved", ends_at="2026-11-26T10:05:00Z"))
    )[0]

    assert firing.occurrence_key == resolved.occurrence_key
    assert resolved.ends_at == datetime(2026, 11, 26, 10, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.pop("version"), "version"),
        (lambda b: b.update(version="4"), "version"),
        (lambda b: b["alerts"][0].pop("startsAt"), "alerts.0.startsAt"),
        (lambda b: b["alerts"][0].update(status="pending"), "alerts.0.status"),
        (lambda b: b["alerts"][0]["labels"].update(instance=5), "alerts.0.labels.instance"),
        (lambda b: b.update(alerts={"not": "a list"}), "alerts"),
        (lambda b: b.update(truncatedAlerts=-1), "truncatedAlerts"),
    ],
)
def test_invalid_payloads_name_the_offending_field(mutate: object, field: str) -> None:
    body = grafana_notification()
    mutate(body)  # type: ignore[operator]

    with pytest.raises(PayloadError) as caught:
        parse_payload("grafana", body)

    assert caught.value.field == field
    assert str(caught.value).startswith(field + ":")


def test_a_body_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(PayloadError, match="JSON object"):
        parse_payload("alertmanager", [1, 2, 3])


def test_non_finite_values_are_dropped_rather_than_passed_to_the_worker() -> None:
    raw = json.dumps(grafana_notification()).replace('"A": 97.5', '"A": NaN, "B": 2.5').encode()

    (alert,) = normalise("grafana", parse_payload_json("grafana", raw))

    assert alert.values == {"B": 2.5}


def test_raw_body_that_is_not_json_is_reported_as_such() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_payload_json("grafana", b"{oops")

    assert caught.value.not_json and "not valid JSON" in str(caught.value)
