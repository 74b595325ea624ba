"""Stopped targets: the newest sample time of a target against the end of the window, and cutting stale points."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tools.prometheus_models import QueryResult
from tools.types import Point, Series
from triage.pipeline.checks._liveness import liveness, liveness_query, until
from triage.pipeline.checks._stats import shift

END = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SCRAPE_S = 15
STEP_S = 30


def _stamps(last_sample: datetime, minutes: int = 60) -> QueryResult:
    """What ``max(timestamp(x))`` answers over the hour before END for a target scraped every 15 s until
    ``last_sample``: each step carries the newest sample at or before it, for five minutes of lookback."""
    points = []
    t = END - timedelta(minutes=minutes)
    while t <= END:
        newest = min(t, last_sample)
        newest_s = newest.timestamp() - newest.timestamp() % SCRAPE_S
        if t.timestamp() - newest_s <= 300:
            points.append(Point(t.timestamp(), newest_s))
        t += timedelta(seconds=STEP_S)
    return QueryResult("max(timestamp(x))", "matrix", [Series({}, points)], 1, step_s=STEP_S)


def test_a_target_scraped_up_to_the_window_end_is_not_stopped() -> None:
    state = liveness(_stamps(END), END)
    assert state is not None and not state.stopped
    assert state.interval_s == STEP_S


def test_a_target_whose_samples_ended_minutes_before_the_window_end_stopped_at_its_last_sample() -> None:
    state = liveness(_stamps(END - timedelta(minutes=4)), END)
    assert state is not None and state.stopped
    assert state.last_sample == END - timedelta(minutes=4)


def test_a_lag_of_one_step_and_one_scrape_is_not_a_stop() -> None:
    state = liveness(_stamps(END - timedelta(seconds=STEP_S + SCRAPE_S)), END)
    assert state is not None and not state.stopped


def test_a_target_without_any_sample_in_the_window_says_nothing() -> None:
    assert liveness(QueryResult("q", "matrix", [], 0, step_s=STEP_S), END) is None


def test_the_liveness_query_takes_the_newest_sample_time_of_the_selector() -> None:
    assert liveness_query('up{instance="a:9100"}') == 'max(timestamp(up{instance="a:9100"}))'


def test_values_computed_after_the_last_sample_do_not_make_a_shift() -> None:
    # a flat series whose last minutes are stale extrapolation (a jump after the target stopped)
    start = END - timedelta(minutes=60)
    points = [Point((start + timedelta(minutes=m)).timestamp(), 0.13) for m in range(0, 56)]
    points += [Point((start + timedelta(minutes=m)).timestamp(), 0.4) for m in range(56, 61)]
    series = Series({"instance": "gitea:9100"}, points)
    split = END - timedelta(minutes=15)
    bogus = shift(series, split)
    assert bogus is not None and bogus.z > 3
    honest = shift(until(series, start + timedelta(minutes=55)), split, min_recent=3)
    assert honest is not None and abs(honest.z) < 1


def test_a_series_with_almost_no_recent_points_gives_no_shift() -> None:
    start = END - timedelta(minutes=60)
    points = [Point((start + timedelta(minutes=m)).timestamp(), 0.1) for m in range(0, 47)]
    series = Series({}, points)
    assert shift(series, END - timedelta(minutes=15), min_recent=3) is None
    assert shift(series, END - timedelta(minutes=15)) is not None
