"""What the model reads of each evidence item: every fact once, and other items named by their short ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reports.models import Alert, AlertStatus, Evidence, History
from triage.analysis.evidence_view import prompt_view, row_view, unrepeated_detail
from triage.analysis.triage_prompt import (
    build_payload,
    citable_ids,
    evidence_aliases,
    prompt_evidence,
    referenced_by_alias,
)

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PANIC = (
    "18× panic: runtime error: invalid memory address or nil pointer dereference [signal SIGSEGV: segmentation "
    "violation code=0x1 addr=0x18 pc=0x8a3f21] (new pattern)"
)


def item(ident: str, title: str, detail: str, minutes: float = -5.0, score: float = 0.5) -> Evidence:
    return Evidence(
        id=ident, source="loki", kind="log_pattern", title=title, detail=detail, score=score,
        at=START + timedelta(minutes=minutes),
    )  # fmt: skip


def test_a_log_items_pattern_that_repeats_its_title_is_left_out_and_its_times_kept() -> None:
    detail = (
        "first 11:55:00, last 11:59:30 UTC; pattern: panic: runtime error: invalid memory address or nil pointer "
        "dereference [signal SIGSEGV: segmentation violation code=<hex> addr=<hex> pc=<hex>]"
    )
    assert unrepeated_detail(PANIC, detail) == "first 11:55:00, last 11:59:30 UTC"
    view = prompt_view(item("log-1", PANIC, detail), START)
    assert view["detail"] == "first 11:55:00, last 11:59:30 UTC"
    assert "source" not in view and view["kind"] == "log_pattern" and view["offset_min"] == -5.0


def test_a_clause_with_new_words_is_kept() -> None:
    detail = "pattern: panic: runtime error; 2 more variant(s), e.g. fatal error: concurrent map writes in cart handler"
    assert (
        unrepeated_detail(PANIC, detail) == "2 more variant(s), e.g. fatal error: concurrent map writes in cart handler"
    )
    # a clause of one or two words is never taken for a repetition
    assert unrepeated_detail("panic in cart", "panic") == "panic"


def test_a_clause_that_gives_the_items_own_offset_in_words_is_left_out_and_another_offset_kept() -> None:
    detail = "baseline 40 ± 2, recent peak 71; left its usual range at -39 min from the alert start"
    assert unrepeated_detail("clients rose", detail, -38.7) == "baseline 40 ± 2, recent peak 71"
    assert unrepeated_detail("clients rose", detail, -12.0) == detail
    assert unrepeated_detail("Annotation: Deploy", "-6 min from the alert start; by ci", -6.0) == "by ci"


def test_a_detail_that_quotes_another_shown_items_title_names_it_by_its_short_id() -> None:
    effect = item("met-misses", "redis_keyspace_misses_total rate rose from 3 to 59.2 (+374.7σ)", "", -16.0, 0.8)
    cause = item("log-restart", "restart: redis-server just started", f"explains, 1 min later: {effect.title}")
    shown = [cause, effect]
    aliases = evidence_aliases(shown)
    assert referenced_by_alias(cause, aliases, shown).detail == "explains, 1 min later: e2"
    # the item itself and the report are untouched
    assert cause.detail.endswith(effect.title)
    alert = Alert(fingerprint="f", alertname="RedisEvictions", status=AlertStatus.firing, starts_at=START)
    payload = build_payload(alert, shown, [], History(), START)
    assert payload["evidence"] == [
        ["e1", "log_pattern", cause.title, 0.5, -5.0, "explains, 1 min later: e2"],
        ["e2", "log_pattern", effect.title, 0.8, -16.0],
    ]
    assert row_view(payload["evidence"][1]) == {
        "id": "e2", "kind": "log_pattern", "title": effect.title, "score": 0.8, "offset_min": -16.0,
    }  # fmt: skip


def test_rows_that_only_restate_the_alert_are_listed_apart_after_the_others_and_noise_is_left_out() -> None:
    signal = Evidence(id="sig-q", source="prometheus", kind="alert_signal", title="Alert query rose", score=0.9)
    symptom = Evidence(
        id="sat-disk", source="prometheus", kind="saturation", title="disk busy rose", score=0.6,
        data={"symptom": True},
    )  # fmt: skip
    cause = item("log-smart", "SMART pending sectors rose", "", -30.0, 0.5)
    flat = item("sat-cpu", "CPU busy rose from 12% to 12% (+0.2σ)", "", -1.0, 0.06)
    shown = prompt_evidence([signal, symptom, cause, flat])
    assert [e.id for e in shown] == ["log-smart", "sig-q", "sat-disk"]
    alert = Alert(fingerprint="f", alertname="HostDiskIoSaturated", status=AlertStatus.firing, starts_at=START)
    payload = build_payload(alert, [signal, symptom, cause, flat], [], History(), START)
    assert [row[0] for row in payload["evidence"]] == ["e1"]
    assert [(row[0], row[2]) for row in payload["symptoms"]] == [("e2", "Alert query rose"), ("e3", "disk busy rose")]
    # a hypothesis cites the rows that may explain the alert, not those that restate it
    assert citable_ids(payload) == ["e1"]
    only_symptoms = build_payload(alert, [signal, symptom], [], History(), START)
    assert only_symptoms["evidence"] == [] and citable_ids(only_symptoms) == ["e1", "e2"]
    # the strongest item is shown whatever its score
    assert [e.id for e in prompt_evidence([flat])] == ["sat-cpu"]
