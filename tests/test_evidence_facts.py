"""The evidence facts triage reads back: written as the report JSON always had them, read back typed."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reports.models import Evidence
from triage.evidence_facts import Facts, facts, facts_data
from triage.pipeline.ranking import anomaly_of, effective_time, signal_onset

START = datetime(2026, 12, 5, 0, 10, tzinfo=UTC)
TASK_START = 1796429193  # a Proxmox or PBS task's starttime: whole epoch seconds, an int
LINE_AT = 1796429421.0  # a log line's time: a float


def item(data: dict[str, Any], *, kind: str = "k", score: float = 0.3) -> Evidence:
    return Evidence(id="e1", source="test", kind=kind, title="t", score=score, at=START, data=data)


def stored(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as the report JSON holds it."""
    dumped: dict[str, Any] = item(data).model_dump(mode="json")["data"]
    return dumped


def read_back(data: dict[str, Any], **kind: str) -> Facts:
    """The facts of an item as read from its stored JSON."""
    return facts(Evidence.model_validate({**item({}, **kind).model_dump(mode="json"), "data": stored(data)}))


# --- each fact: written → report JSON → read back


def test_anomaly() -> None:
    data = {"z": 2.0, **facts_data(anomaly=0.8), "proximity": 1.0}
    assert stored(data) == {"z": 2.0, "anomaly": 0.8, "proximity": 1.0}
    assert read_back(data).anomaly == 0.8
    assert facts(item({})).anomaly is None


def test_active_from_and_until_keep_the_epoch_seconds_the_source_gave() -> None:
    task = facts_data(active_from=TASK_START, active_until=TASK_START + 600)
    assert stored(task) == {"active_from": 1796429193, "active_until": 1796429793}
    assert json.dumps(stored(task)) == '{"active_from": 1796429193, "active_until": 1796429793}'
    line = facts_data(active_from=LINE_AT, active_until=LINE_AT + 420.0)
    assert json.dumps(stored(line)) == '{"active_from": 1796429421.0, "active_until": 1796429841.0}'
    known = read_back(task)
    assert known.active_from == datetime.fromtimestamp(TASK_START, UTC)
    assert known.active_until == datetime.fromtimestamp(TASK_START + 600, UTC)
    assert read_back(line).active_from == datetime.fromtimestamp(LINE_AT, UTC)


def test_no_end_yet_is_a_null_active_until() -> None:
    data = {**facts_data(active_from=TASK_START, active_until=None), "failed": True, "store": "backup"}
    assert stored(data) == {"active_from": 1796429193, "active_until": None, "failed": True, "store": "backup"}
    known = read_back(data)
    assert known.active_from == datetime.fromtimestamp(TASK_START, UTC) and known.active_until is None


def test_onset_and_pending_s() -> None:
    onset = (START - timedelta(minutes=7)).timestamp()
    data = {"fires": "above", **facts_data(onset=onset, pending_s=300.0)}
    assert stored(data) == {"fires": "above", "onset": onset, "pending_s": 300.0}
    known = read_back(data, kind="alert_signal")
    assert known.onset == START - timedelta(minutes=7) and known.pending_s == 300.0


def test_a_pending_period_unknown_or_zero_is_left_out() -> None:
    assert facts_data(onset=1796429193.0, pending_s=None) == {"onset": 1796429193.0}
    assert facts_data(onset=1796429193.0, pending_s=0.0) == {"onset": 1796429193.0}
    assert facts(item({"onset": 1796429193.0})).pending_s is None


def test_a_log_pattern_keeps_its_keys_in_order() -> None:
    data = {
        **facts_data(count=6),
        "before": 0,
        **facts_data(new=True),
        "template": "php-fpm[<n>]: server reached pm.max_children",
        **facts_data(
            place="target",
            where="nextcloud",
            about_target=True,
            points_at=["db1"],
            persisting=False,
            active_from=LINE_AT,
            active_until=LINE_AT + 420.0,
        ),
    }
    assert json.dumps(stored(data)) == (
        '{"count": 6, "before": 0, "new": true, "template": "php-fpm[<n>]: server reached pm.max_children", '
        '"place": "target", "where": "nextcloud", "about_target": true, "points_at": ["db1"], "persisting": false, '
        '"active_from": 1796429421.0, "active_until": 1796429841.0}'
    )
    known = read_back(data)
    assert (known.count, known.new, known.place, known.where) == (6, True, "target", "nextcloud")
    assert known.about_target and not known.persisting and known.points_at == ("db1",)


def test_a_line_that_names_no_place_has_no_points_at() -> None:
    assert facts_data(where="nextcloud", points_at=[]) == {"where": "nextcloud"}
    assert facts(item({"where": "nextcloud"})).points_at == ()


def test_a_metric_shift() -> None:
    data = {
        **facts_data(metric="node_load1"),
        "z": 4.2,
        **facts_data(place="node", where="pve1", persisting=True),
        "running_out": 0.9,
    }
    assert stored(data) == {
        "metric": "node_load1",
        "z": 4.2,
        "place": "node",
        "where": "pve1",
        "persisting": True,
        "running_out": 0.9,
    }
    known = read_back(data)
    assert (known.metric, known.place, known.where, known.persisting) == ("node_load1", "node", "pve1", True)
    assert not known.about_target and not known.new and known.count is None


def test_a_proxmox_task() -> None:
    upid = "UPID:pve1:0000ABCD:0012EF34:67A1B2C3:qmreboot:460:root@pam:"
    data = {
        **facts_data(upid=upid),
        "type": "qmreboot",
        "vmid": 460,
        **facts_data(about_target=True, active_from=TASK_START, active_until=None),
    }
    assert stored(data) == {
        "upid": upid,
        "type": "qmreboot",
        "vmid": 460,
        "about_target": True,
        "active_from": 1796429193,
        "active_until": None,
    }
    known = read_back(data)
    assert known.upid == upid and known.about_target and known.active_until is None


def test_a_saturation_target() -> None:
    data = {**facts_data(metric="iowait"), "z": 198.77, **facts_data(target="nextcloud:9100"), "peak": 0.42}
    assert stored(data) == {"metric": "iowait", "z": 198.77, "target": "nextcloud:9100", "peak": 0.42}
    known = read_back(data)
    assert (known.metric, known.target) == ("iowait", "nextcloud:9100")


def test_an_item_without_facts() -> None:
    assert facts(item({"failed": True})) == Facts()
    assert facts_data() == {}


# --- malformed values behave as they always did


@pytest.mark.parametrize(("value", "expected"), [("0.5", 0.5), ("high", 0.0), (None, 0.0), ([1], 0.0), (7, 1.0)])
def test_an_unreadable_anomaly_counts_as_none(value: object, expected: float) -> None:
    ranked = item({"anomaly": value}, score=0.3)
    assert anomaly_of(ranked) == expected
    # not ranked yet: the score is the anomaly
    assert anomaly_of(item({}, score=0.3)) == 0.3


@pytest.mark.parametrize("value", ["2026-12-05T00:00:00Z", None, [1796429193]])
def test_a_time_that_is_not_epoch_seconds_is_absent(value: object) -> None:
    known = facts(item({"active_from": value, "active_until": value, "onset": value}))
    assert (known.active_from, known.active_until, known.onset) == (None, None, None)
    # the item's own time counts, as without the key
    assert effective_time(item({"active_from": value}), START) == START
    assert signal_onset([item({"onset": value}, kind="alert_signal")], START, allowance_min=60) is None


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e300])
def test_a_time_that_is_no_point_in_time_is_absent(value: float) -> None:
    known = facts(item({"active_from": value, "active_until": value, "onset": value}))
    assert (known.active_from, known.active_until, known.onset) == (None, None, None)
    assert signal_onset([item({"onset": value}, kind="alert_signal")], START, allowance_min=60) is None


def test_an_unreadable_end_means_still_going() -> None:
    began = (START - timedelta(hours=1)).timestamp()
    assert effective_time(item({"active_from": began, "active_until": "soon"}), START) == START
    ended = (START - timedelta(minutes=30)).timestamp()
    assert effective_time(item({"active_from": began, "active_until": ended}), START) == START - timedelta(minutes=30)


@pytest.mark.parametrize("value", ["300", None, math.nan, [300]])
def test_an_unreadable_pending_period_is_none(value: object) -> None:
    onset = (START - timedelta(hours=5)).timestamp()
    signal = item({"onset": onset, "pending_s": value}, kind="alert_signal")
    assert facts(signal).pending_s is None
    assert signal_onset([signal], START, allowance_min=60) == START - timedelta(minutes=60)


def test_flags_are_read_by_truth() -> None:
    assert facts(item({"persisting": "yes", "about_target": 1, "new": [0]})) == Facts(
        persisting=True, about_target=True, new=True
    )
    assert facts(item({"persisting": 0, "about_target": None, "new": ""})) == Facts()


def test_names_of_the_wrong_type_are_absent() -> None:
    known = facts(item({"where": 5, "place": ["target"], "upid": 12, "count": "3", "points_at": "db1"}))
    assert (known.where, known.place, known.upid, known.count, known.points_at) == (None, None, None, None, ())
    assert facts(item({"points_at": ["db1", 5, None, "nas"]})).points_at == ("db1", "nas")


def test_a_measure_name_is_read_as_text() -> None:
    assert facts(item({"metric": None, "target": 105})) == Facts(metric="None", target="105")


def test_store_and_limit_lowered_are_left_out_when_unknown() -> None:
    data = {**facts_data(active_from=TASK_START, active_until=None), "failed": False, **facts_data(store=None)}
    assert stored(data) == {"active_from": TASK_START, "active_until": None, "failed": False}
    assert read_back(data).store is None
    assert stored(facts_data(limit_lowered=None)) == {}


def test_store_and_limit_lowered_round_trip() -> None:
    data = {**facts_data(store="tank"), **facts_data(limit_lowered=0.75)}
    assert stored(data) == {"store": "tank", "limit_lowered": 0.75}
    back = read_back(data)
    assert (back.store, back.limit_lowered) == ("tank", 0.75)
