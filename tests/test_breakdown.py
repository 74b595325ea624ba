"""The alert's query taken apart: its measure, the input of its aggregation, its metric names, and which series of
the input carry the change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tools.types import Point, Series
from triage.pipeline.checks._breakdown import (
    breakdown_query,
    distinguishing,
    dominant,
    measured_side,
    movers,
    query_metrics,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _series(labels: dict[str, str], before: float, after: float, change_min: float = -10) -> Series:
    points = []
    for minute in range(-120, 1):
        value = before if minute < change_min else after
        points.append(Point((T0 + timedelta(minutes=minute)).timestamp(), value * (1 + 0.01 * (minute % 3))))
    return Series(labels, points)


def test_the_measure_of_a_threshold_rule_is_its_left_side() -> None:
    assert (
        measured_side("rate(node_disk_io_time_seconds_total[5m]) > 0.8")
        == "rate(node_disk_io_time_seconds_total{}[5m])"
    )
    assert measured_side("(sum by (db) (pg_stat_activity_count) >= 90)") == "sum by (db)(pg_stat_activity_count{})"
    assert measured_side("up == bool 0") is None  # already returns every sample
    assert measured_side("a > b") is None  # compares with another series, not a threshold
    assert measured_side("up") is None
    assert measured_side("this is not promql (") is None


def test_the_breakdown_is_the_input_of_the_first_aggregation() -> None:
    assert breakdown_query(
        'sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.05'
    ) == ('rate(http_requests_total{code=~"5.."}[5m])')
    assert breakdown_query("max by (instance) (node_load1) > 4") == "node_load1{}"
    assert breakdown_query("node_load1 > 4") is None


def test_the_metric_names_of_a_query_are_its_symptoms() -> None:
    assert query_metrics("sum(rate(a_total[5m])) / sum(rate(b_total[5m])) > 1") == {"a_total", "b_total"}
    assert query_metrics(None) == frozenset()


def test_the_series_carrying_the_change_is_named_by_the_label_that_sets_it_apart() -> None:
    series = [
        _series({"__name__": "pg_stat_activity_count", "datname": "nextcloud", "instance": "db:9187"}, 8, 82),
        _series({"__name__": "pg_stat_activity_count", "datname": "immich", "instance": "db:9187"}, 12, 12),
        _series({"__name__": "pg_stat_activity_count", "datname": "grafana", "instance": "db:9187"}, 5, 5.5),
    ]
    assert distinguishing(series) == ["datname"]
    (part,) = movers(series, T0 - timedelta(minutes=60), T0 - timedelta(minutes=15), rising=True)
    assert part.labels == {"datname": "nextcloud"} and part.share > 0.9


def test_nothing_moved_then_the_part_holding_most_of_the_total_is_named() -> None:
    series = [
        _series({"datname": "nextcloud"}, 82, 82),
        _series({"datname": "immich"}, 12, 12),
    ]
    assert movers(series, T0 - timedelta(minutes=60), T0 - timedelta(minutes=15), rising=True) == []
    found = dominant(series)
    assert found is not None and found[0] == {"datname": "nextcloud"} and found[3] > 0.8
    assert dominant([_series({"datname": "a"}, 5, 5), _series({"datname": "b"}, 5, 5)]) is None
