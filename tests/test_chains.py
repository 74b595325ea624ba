"""Causes before consequences: one event reported twice, and a change lifted above what it set off."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from reports.models import Evidence
from triage.pipeline.chains import CHAIN_MIN, causes_first, same_events
from triage.pipeline.checks._restating import restates, rule_line_filters

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
UPID = "UPID:altair:0000A1F2:00B2C3D4:6745A0C1:qmreboot:460:root@pam:"


def item(
    ident: str, kind: str, score: float, minutes: float, *, ours: bool = True, source: str = "loki", **data: Any
) -> Evidence:
    return Evidence(
        id=ident,
        source=source,
        kind=kind,
        title=data.pop("title", ident),
        score=score,
        at=START + timedelta(minutes=minutes),
        data={"about_target": ours, **data},
    )


def test_a_config_change_is_lifted_just_above_the_reboot_and_oom_kills_that_followed_it() -> None:
    ranked = [
        item("oom", "oom", 0.78, -4),
        item("reboot", "reboot", 0.77, -8, source="proxmox"),
        item("other", "log_pattern", 0.70, -3),
        item("config", "config", 0.57, -9.5),
    ]
    result = causes_first(ranked)
    assert [e.id for e in result] == ["config", "oom", "reboot", "other"]
    assert result[0].score > 0.78
    assert "explains, 6 min later: oom" in result[0].detail
    assert result[0].data["consequence"] == "oom"


def test_a_change_elsewhere_or_long_before_or_after_its_consequence_is_left_alone() -> None:
    ranked = [
        item("oom", "oom", 0.8, -4),
        item("elsewhere", "config", 0.5, -6, ours=False),
        item("long-before", "upgrade", 0.5, -4 - CHAIN_MIN - 1),
        item("after", "deploy", 0.4, -2),
    ]
    result = causes_first(ranked)
    assert [(e.id, e.score) for e in result] == [(e.id, e.score) for e in ranked]


def test_a_change_already_above_its_consequence_keeps_its_score() -> None:
    ranked = [item("deploy", "deploy", 0.9, -10), item("restart", "restart", 0.6, -9)]
    assert causes_first(ranked) == ranked


def test_a_log_line_announcing_a_listed_task_is_the_same_event() -> None:
    task = item("task", "reboot", 0.77, -8, source="proxmox", upid=UPID)
    line = item("line", "reboot", 0.6, -8, title=f"reboot: pvedaemon[2231]: <root@pam> starting task {UPID}")
    unrelated = item("other", "reboot", 0.6, -8, title="reboot: starting task UPID:altair:0000BEEF:00B2C3D4:6745A0C1:x")
    assert [e.id for e in same_events([task, line, unrelated])] == ["task", "other"]
    # without the task in the report, the line is all there is
    assert [e.id for e in same_events([line])] == ["line"]


def test_logql_line_filters_are_read_with_both_quotings_and_escapes() -> None:
    query = 'sum(count_over_time({host="rigel"} |= "finished with \\"errors\\"" |~ `job (failed|errors)` != "x" [5m]))'
    assert rule_line_filters(query) == [("=", 'finished with "errors"'), ("~", "job (failed|errors)")]


def test_a_line_restates_a_log_rule_only_when_it_passes_every_positive_filter() -> None:
    query = 'count_over_time({host="rigel"} |= "Backup job" |~ "finished with (errors|warnings)" [15m]) > 0'
    assert restates("INFO: Backup job finished with errors", query)
    assert not restates("INFO: Backup job finished successfully", query)
    assert not restates("anything", 'rate({host="rigel"}[5m]) > 1')  # no line filter: nothing restates it
    assert not restates("anything", None)
    assert not restates("a(b", 'count_over_time({a="b"} |~ "(?P<x" [5m])')  # unreadable pattern decides nothing


def shift(ident: str, score: float, minutes: float, where: str = "pollux") -> Evidence:
    return item(ident, "metric_shift", score, minutes, ours=False, source="prometheus", where=where)


def line(
    ident: str, score: float, minutes: float, *, count: int = 1, new: bool = True, where: str = "pollux"
) -> Evidence:
    return item(ident, "log_pattern", score, minutes, ours=False, count=count, new=new, where=where)


def test_a_new_message_is_lifted_above_the_shift_of_its_place_that_began_with_it() -> None:
    ranked = [
        shift("reads", 0.70, -13.5),
        shift("guest-iowait", 0.58, -13, where="forgejo"),
        line("resilver", 0.5, -14),
    ]
    result = causes_first(ranked)
    assert [e.id for e in result] == ["resilver", "reads", "guest-iowait"]
    assert result[0].data["consequence"] == "reads"


def test_floods_old_messages_other_places_and_shifts_long_after_explain_nothing() -> None:
    ranked = [
        shift("reads", 0.70, -13.5),
        line("flood", 0.5, -14, count=40),
        line("known", 0.5, -14, new=False),
        line("elsewhere", 0.5, -14, where="forgejo"),
        line("too-early", 0.5, -14 - 6),
        line("after", 0.5, -13.5 + 2),
    ]
    assert [e.id for e in causes_first(ranked)] == [e.id for e in ranked]


def test_a_lowered_limit_is_not_the_footprint_of_the_restart_that_applied_it() -> None:
    lowered = item("maxmemory", "metric_shift", 0.9, -17.9, ours=False, source="prometheus", where="pollux")
    lowered.data["limit_lowered"] = 0.75
    ranked = [lowered, line("restart", 0.85, -18)]
    result = causes_first(ranked)
    assert [e.id for e in result] == ["maxmemory", "restart"]
    assert "consequence" not in result[1].data


def _task(ident: str, kind: str, score: float, minutes: float, until: float | None, store: str) -> Evidence:
    began = int((START + timedelta(minutes=minutes)).timestamp())
    ended = None if until is None else int((START + timedelta(minutes=until)).timestamp())
    return item(ident, kind, score, minutes, source="pbs", store=store, active_from=began, active_until=ended)


def test_maintenance_running_on_the_datastore_a_backup_writes_to_is_lifted_above_the_backup() -> None:
    backup = _task("backup", "backup", 0.9, -20, None, "hdd")
    verify = _task("verify", "verify", 0.45, -45, None, "hdd")
    result = causes_first([backup, verify])
    assert [e.id for e in result] == ["verify", "backup"]
    assert result[0].data["consequence"] == "backup"
    # another datastore, maintenance that ended before the backup began, or began after it: no link
    for other in (
        _task("gc", "garbage collection", 0.5, -45, None, "ssd"),
        _task("gc", "garbage collection", 0.5, -60, -30, "hdd"),
        _task("gc", "garbage collection", 0.5, -10, None, "hdd"),
    ):
        assert [e.id for e in causes_first([backup, other])] == ["backup", "gc"]


def test_the_place_a_target_error_names_is_looked_at_around_the_error() -> None:
    error = item("econnrefused", "log_pattern", 0.92, -4.8, points_at=["pgdb01"], place="target", where="photos01")
    panic = item("panic", "log_pattern", 0.46, -5.2, ours=False, place="dependency", where="pgdb01")
    weaker = item("terminating", "log_pattern", 0.37, -5.0, ours=False, place="dependency", where="pgdb01")
    long_before = item("old", "log_pattern", 0.5, -40, ours=False, place="dependency", where="pgdb01")
    unnamed = item("other-host", "log_pattern", 0.45, -5, ours=False, place="node", where="pve1")
    result = causes_first([error, long_before, panic, unnamed, weaker])
    assert [e.id for e in result] == ["panic", "econnrefused", "old", "other-host", "terminating"]
    assert "explains, 0 min later: econnrefused" in result[0].detail


def test_a_change_and_a_restart_on_the_same_neighbour_are_linked_but_not_across_places() -> None:
    upgrade = item("upgrade", "upgrade", 0.6, -12.5, ours=False, where="db02")
    recovery = item("recovery", "restart", 0.62, -11, ours=False, where="db02")
    other = item("other-upgrade", "upgrade", 0.3, -12, ours=False, where="cloud01")
    result = causes_first([recovery, upgrade, other])
    assert [e.id for e in result] == ["upgrade", "recovery", "other-upgrade"]
    assert result[2].score == 0.3


def test_findings_that_explain_the_same_shift_are_ordered_earliest_first() -> None:
    reads = shift("reads", 0.59, -11, where="mdb01")
    restart = line("restart", 0.46, -11.0, where="mdb01")
    installed = line("installed", 0.46, -11.2, where="mdb01")
    packages = line("packages", 0.46, -12.5, where="mdb01")
    result = causes_first([restart, installed, packages, reads])
    assert [e.id for e in result] == ["packages", "installed", "restart", "reads"]


def test_a_deploy_is_lifted_above_the_messages_its_place_never_logged_before_that_followed_it() -> None:
    ranked = [
        item("panic", "log_pattern", 0.94, -5, new=True, where="web01"),
        item("old-warning", "log_pattern", 0.9, -5, new=False, where="web01"),
        item("before", "log_pattern", 0.8, -8, new=True, where="web01"),
        item("elsewhere", "log_pattern", 0.75, -5, ours=False, new=True, where="db01"),
        item("deploy", "deploy", 0.66, -6.5, where="web01"),
    ]
    result = causes_first(ranked)
    assert [e.id for e in result] == ["deploy", "panic", "old-warning", "before", "elsewhere"]
    assert result[0].data["consequence"] == "panic" and "explains, 2 min later: panic" in result[0].detail
