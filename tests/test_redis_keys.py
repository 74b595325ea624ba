"""The Redis keys and stats hash fields, pinned byte for byte: data already in Redis must keep working."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from reports.delivery import ANNOTATION_TAG
from reports.models import NotifyEvent
from triage.constants import (
    DELIVERY_STATS_KEY,
    HEALTH_CHECK_KEY,
    JOB_STATS_KEY,
    QUEUE_NAME,
    ask_session_key,
    delivery_stats_field,
    job_stats_field,
    llm_budget_key,
    notify_held_key,
    notify_slot_key,
    parse_delivery_stats_field,
    parse_job_stats_field,
    resolve_job_id,
    storm_lead_key,
    storm_lock_key,
    storm_members_key,
    storm_result_key,
    triage_job_id,
)


def test_fixed_keys() -> None:
    assert QUEUE_NAME == "sre-triage:queue"
    assert HEALTH_CHECK_KEY == "sre-triage:health-check"
    assert JOB_STATS_KEY == "sre-triage:stats:jobs"
    assert DELIVERY_STATS_KEY == "sre-triage:stats:deliveries"
    assert ANNOTATION_TAG == "sre-triage"


def test_job_ids_of_an_occurrence() -> None:
    assert triage_job_id("0123abcd") == "triage:0123abcd"
    assert resolve_job_id("0123abcd") == "resolve:0123abcd"


def test_storm_keys() -> None:
    assert storm_lead_key("f00d") == "sre-triage:storm:lead:f00d"
    assert storm_result_key("f00d") == "sre-triage:storm:result:f00d"
    assert storm_members_key("f00d") == "sre-triage:storm:members:f00d"
    assert storm_lock_key("f00d") == "sre-triage:storm:lock:f00d"


def test_notify_rate_keys() -> None:
    event: NotifyEvent = "triaged"
    assert notify_slot_key("notify-1", event) == "sre-triage:notify:slot:notify-1:triaged"
    assert notify_held_key("notify-1", event) == "sre-triage:notify:held:notify-1:triaged"
    assert notify_slot_key("chat", "resolved") == "sre-triage:notify:slot:chat:resolved"


def test_llm_budget_key_is_the_utc_hour() -> None:
    assert llm_budget_key(datetime(2026, 3, 4, 5, 59, tzinfo=UTC)) == "sre-triage:llm:tokens:2026030405"
    east = timezone(timedelta(hours=2))
    assert llm_budget_key(datetime(2026, 3, 4, 1, 30, tzinfo=east)) == "sre-triage:llm:tokens:2026030323"


def test_ask_session_key() -> None:
    assert ask_session_key("s3ss10n") == "sre-triage:ask:session:s3ss10n"
    assert ask_session_key("s3ss10n", "test:") == "test:s3ss10n"


def test_stats_fields_round_trip() -> None:
    assert job_stats_field("triage_alert", "outcome", "success") == "triage_alert|outcome|success"
    assert job_stats_field("triage_alert", "le", "+Inf") == "triage_alert|le|+Inf"
    assert job_stats_field("triage_alert", "sum") == "triage_alert|sum"
    assert parse_job_stats_field("triage_alert|le|0.5") == ("triage_alert", "le", "0.5")
    assert parse_job_stats_field("triage_alert|sum") == ("triage_alert", "sum", "")
    assert delivery_stats_field("grafana", "delivered") == "grafana|delivered"
    assert parse_delivery_stats_field("notify-1|pending") == ("notify-1", "pending")
