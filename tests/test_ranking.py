"""Ranking evidence by anomaly size and time proximity, and choosing what the LLM sees."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from reports.models import Evidence
from triage.analysis.evidence_view import prompt_view, select_for_prompt, view_tokens
from triage.pipeline.ranking import proximity, rank, saturate, signal_onset

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def item(ident: str, anomaly: float, minutes: float | None, detail: str = "") -> Evidence:
    at = None if minutes is None else START + timedelta(minutes=minutes)
    return Evidence(id=ident, source="test", kind="k", title=ident, score=anomaly, at=at, detail=detail)


def test_saturate_reaches_half_at_the_half_point_and_stays_below_one() -> None:
    assert saturate(3.0, 3.0) == 0.5
    assert saturate(0.0, 3.0) == 0.0
    assert 0.9 < saturate(100.0, 3.0) < 1.0
    assert saturate(-6.0, 3.0) == saturate(6.0, 3.0)
    assert saturate(float("inf"), 1.0) == 1.0


def test_a_change_just_before_the_start_outranks_the_same_change_an_hour_earlier() -> None:
    ranked = rank([item("hour-before", 0.8, -60), item("just-before", 0.8, -2)], START)
    assert [e.id for e in ranked] == ["just-before", "hour-before"]


def test_findings_after_the_start_count_less_than_the_same_finding_before_it() -> None:
    assert proximity(START + timedelta(minutes=5), START) < proximity(START - timedelta(minutes=5), START)


def test_a_large_anomaly_far_from_the_start_is_still_ranked_above_noise_at_the_start() -> None:
    ranked = rank([item("noise", 0.05, 0), item("big-shift", 0.95, -120)], START)
    assert ranked[0].id == "big-shift"


def test_ranking_keeps_every_item_and_records_its_parts() -> None:
    items = [item(f"e{i}", i / 10, -i, "x") for i in range(10)] + [item("undated", 0.5, None)]
    ranked = rank(items, START)
    assert {e.id for e in ranked} == {e.id for e in items}
    assert [e.score for e in ranked] == sorted((e.score for e in ranked), reverse=True)
    undated = next(e for e in ranked if e.id == "undated")
    assert undated.data["anomaly"] == 0.5 and 0 < undated.data["proximity"] < 1


@given(
    st.lists(
        st.tuples(st.floats(0, 1), st.one_of(st.none(), st.floats(-600, 600))),
        min_size=1,
        max_size=20,
    )
)
def test_ranking_twice_gives_the_same_order_and_scores(raw: list[tuple[float, float | None]]) -> None:
    items = [item(f"e{i}", a, m) for i, (a, m) in enumerate(raw)]
    once = rank(items, START)
    twice = rank(once, START)
    assert [(e.id, e.score) for e in once] == [(e.id, e.score) for e in twice]
    assert all(0.0 <= e.score <= 1.0 for e in once)


def test_prompt_selection_stays_within_the_token_budget_and_prefers_the_top_items() -> None:
    ranked = rank([item(f"e{i}", 1 - i / 50, -i, "disk latency rose " * 20) for i in range(40)], START)
    budget = 1000
    chosen = select_for_prompt(ranked, budget, START)
    assert sum(view_tokens(prompt_view(e, START)) for e in chosen) <= budget
    assert 0 < len(chosen) < 40
    assert [e.id for e in chosen] == [e.id for e in ranked[: len(chosen)]]


def test_prompt_selection_skips_an_oversized_item_but_keeps_smaller_ones_below_it() -> None:
    ranked = rank([item("huge", 0.9, 0, "y " * 5000), item("small", 0.5, 0, "fits")], START)
    assert [e.id for e in select_for_prompt(ranked, 120, START)] == ["small"]


def test_prompt_view_clips_long_text_and_gives_the_offset_in_minutes() -> None:
    view = prompt_view(item("e", 0.5, -7.5, "z" * 5000), START)
    assert view["offset_min"] == -7.5
    assert len(view["detail"]) <= 600


def test_proximity_is_full_from_when_the_signal_began_moving_to_the_alert_start() -> None:
    onset = START - timedelta(minutes=40)
    slow_cause = item("slow-cause", 0.8, -41)
    unrelated = item("unrelated", 0.8, -90)
    ranked = rank([unrelated, slow_cause], START, onset=onset)
    assert [e.id for e in ranked] == ["slow-cause", "unrelated"]
    assert ranked[0].data["proximity"] > 0.95
    assert proximity(START - timedelta(minutes=20), START, onset=onset) == 1.0
    # without the onset the same cause 41 minutes before the start has faded
    assert proximity(START - timedelta(minutes=41), START) < 0.4


def test_a_condition_that_persists_fades_slower_than_an_event_of_the_same_age() -> None:
    event = item("event", 0.8, -60)
    condition = item("condition", 0.8, -60).model_copy(update={"data": {"persisting": True}})
    ranked = rank([event, condition], START, persisting_half_life_min=60)
    assert [e.id for e in ranked] == ["condition", "event"]
    assert ranked[0].score > 2 * ranked[1].score


def test_the_signal_onset_is_bounded_by_the_slow_burn_allowance() -> None:
    signal = Evidence(
        id="sig",
        source="prometheus",
        kind="alert_signal",
        title="x",
        data={"onset": (START - timedelta(hours=5)).timestamp()},
    )
    assert signal_onset([signal], START, allowance_min=60) == START - timedelta(minutes=60)
    later = signal.model_copy(update={"data": {"onset": (START - timedelta(minutes=7)).timestamp()}})
    assert signal_onset([later], START, allowance_min=60) == START - timedelta(minutes=7)
    assert signal_onset([item("other", 0.5, -3)], START, allowance_min=60) is None
    # a rule that must hold for an hour before it fires began moving at least that much earlier
    pending = signal.model_copy(update={"data": {**signal.data, "pending_s": 3600}})
    assert signal_onset([pending], START, allowance_min=60) == START - timedelta(minutes=120)
