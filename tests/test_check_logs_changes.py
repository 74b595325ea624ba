"""Log error patterns and the change timeline against the Loki, Proxmox, PBS and Grafana fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.engine import EngineWorld, make_alert
from tools.errors import SourceError
from triage.pipeline.checks import changes, log_errors
from triage.pipeline.checks._log_selectors import template
from triage.pipeline.checks.check_context import CheckFailed

WEB = {"job": "nginx", "host": "web1"}


@pytest.fixture
async def world() -> AsyncIterator[EngineWorld]:
    w = EngineWorld()
    w.proxmox.add_node("pve1")
    yield w
    await w.aclose()


def test_templates_mask_numbers_ids_addresses_and_quoted_text() -> None:
    a = template('2026-03-01T12:00:01Z upstream 10.0.0.12:8080 timed out after 3000ms req="GET /a" id=9f8e7d6c5b4a')
    b = template('2026-03-01T12:07:44Z upstream 10.0.0.99:8080 timed out after 12ms req="POST /b" id=0a1b2c3d4e5f')
    assert a == b == "<ts> upstream <ip> timed out after <n>ms req=<str> id=<hex>"
    assert template("worker 3 failed: 550e8400-e29b-41d4-a716-446655440000") == "worker <n> failed: <uuid>"


async def test_steady_log_lines_give_no_patterns(world: EngineWorld) -> None:
    world.loki.push_many(WEB, [(world.ago(m), f"GET /index 200 {m}ms") for m in range(1, 100, 3)])
    ctx = world.context(make_alert({"instance": "web1:9100", "job": "nginx"}, starts_at=world.ago(5)))
    assert (await log_errors.run(ctx)).evidence == ()


async def test_a_new_error_pattern_outranks_a_steady_old_one(world: EngineWorld) -> None:
    # the same warning every 10 minutes for three hours: known noise
    world.loki.push_many(WEB, [(world.ago(m), f"error: cache miss for key {m}") for m in range(2, 180, 10)])
    # a burst of a new failure right before the alert
    world.loki.push_many(
        WEB,
        [(world.ago(8 - i * 0.2), f"upstream 10.0.0.{i}:5432 connect failed: connection refused") for i in range(20)],
    )
    ctx = world.context(make_alert({"instance": "web1:9100"}, starts_at=world.ago(5)))
    items = (await log_errors.run(ctx)).evidence
    assert items[0].data["new"] is True
    assert items[0].title == "20× upstream 10.0.0.0:5432 connect failed: connection refused (new pattern)"
    assert items[0].data["template"] == "upstream <ip> connect failed: connection refused"
    # the warning the host logs all along is not news, whatever its level
    assert not [e for e in items if "cache miss" in e.title]
    assert items[0].ref == '{host=~"(?i)(web1)"}'


async def test_an_info_line_nobody_listed_is_found_because_it_is_new(world: EngineWorld) -> None:
    for minutes in range(2, 180, 10):
        world.loki.push(WEB, "zed: pool tank state is ONLINE", at=world.ago(minutes))
    world.loki.push(WEB, "zed: pool tank state is DEGRADED", at=world.ago(7))
    world.loki.push(WEB, "keepalived: (VI_1) Entering BACKUP STATE", at=world.ago(6))
    ctx = world.context(make_alert({"instance": "web1:9100"}, starts_at=world.ago(5)))
    items = {e.data["template"]: e for e in (await log_errors.run(ctx)).evidence}
    degraded = items["zed: pool tank state is DEGRADED"]
    assert "new variant of a known message" in degraded.title
    assert "keepalived: (VI_<n>) Entering BACKUP STATE" in items
    assert not [t for t in items if "ONLINE" in t]


async def test_log_query_escapes_hostile_label_values(world: EngineWorld) -> None:
    hostile = 'web1"} |= "x" or {job=~".+'
    world.loki.push({"service": hostile}, "ERROR boom", at=world.ago(3))
    world.loki.push({"service": "web1"}, "ERROR other service", at=world.ago(3))
    ctx = world.context(make_alert({"service": hostile}, starts_at=world.ago(5)))
    items = (await log_errors.run(ctx)).evidence
    assert [e.data["template"] for e in items] == ["ERROR boom"]


async def test_failing_loki_fails_the_log_check(world: EngineWorld) -> None:
    world.loki.fail_next(50, status=502)
    ctx = world.context(make_alert({"instance": "web1:9100"}, starts_at=world.ago(5)))
    with pytest.raises(SourceError):
        await log_errors.run(ctx)


async def test_changes_from_every_source_are_merged_in_time_order(world: EngineWorld) -> None:
    world.proxmox.add_guest(105, "web1", node="pve1")
    world.proxmox.add_task(node="pve1", type="qmreboot", starttime=world.epoch_ago(20), vmid=105)
    world.proxmox.add_task(node="pve1", type="qmstart", starttime=world.epoch_ago(25), vmid=999)
    world.pbs.add_task("garbage_collection", "main", starttime=world.epoch_ago(40), endtime=world.epoch_ago(35))
    world.grafana.add_annotation("deployed web 2.4.1", ["deploy"], world.epoch_ago(12) * 1000)
    world.grafana.add_annotation("report of an earlier alert", ["sre-triage"], world.epoch_ago(11) * 1000)
    ctx = world.context(make_alert({"instance": "web1:9100"}, starts_at=world.ago(5)))
    items = (await changes.run(ctx)).evidence
    kinds = [(e.source, e.kind) for e in items]
    assert kinds == [("pbs", "garbage collection"), ("proxmox", "reboot"), ("grafana", "annotation")]
    assert items[-1].detail.startswith("-7 min from the alert start")
    assert not ctx.partial_failures


async def test_log_lines_that_announce_a_change_carry_its_kind(world: EngineWorld) -> None:
    world.loki.push(WEB, "kernel: Out of memory: Killed process 4242 (php-fpm)", at=world.ago(7))
    world.loki.push(WEB, "nginx: configuration reloaded, SIGHUP received", at=world.ago(30))
    ctx = world.context(make_alert({"instance": "web1:9100"}, starts_at=world.ago(5)))
    kinds = {e.kind for e in (await log_errors.run(ctx)).evidence}
    assert kinds == {"oom", "config"}


async def test_a_long_task_that_began_before_the_window_still_counts(world: EngineWorld) -> None:
    world.pbs.add_task("syncjob", "offsite:pull", starttime=world.epoch_ago(300))
    ctx = world.context(make_alert({"instance": "web1:9100"}, starts_at=world.ago(5)))
    (item,) = (await changes.run(ctx)).evidence
    assert item.kind == "sync" and "(running)" in item.title


async def test_one_failing_change_source_is_reported_while_the_others_still_count(world: EngineWorld) -> None:
    world.grafana.add_annotation("deployed web 2.4.1", ["deploy"], world.epoch_ago(12) * 1000)
    world.proxmox.fail_next(50, status=503)
    ctx = world.context(make_alert({"instance": "web1:9100"}, starts_at=world.ago(5)))
    items = (await changes.run(ctx)).evidence
    assert [e.source for e in items] == ["grafana"]
    assert ctx.partial_failures["changes:proxmox"].ok is False


async def test_changes_fail_when_every_source_fails(world: EngineWorld) -> None:
    for fake in (world.loki, world.proxmox, world.pbs, world.grafana):
        fake.fail_next(50, status=500)
    ctx = world.context(make_alert({"instance": "web1:9100"}, starts_at=world.ago(5)))
    with pytest.raises(CheckFailed) as raised:
        await changes.run(ctx)
    assert world.proxmox.token_secret not in str(raised.value)
    assert world.pbs.token_secret not in str(raised.value)


async def test_a_change_line_the_host_also_logged_the_hour_before_is_not_news(world: EngineWorld) -> None:
    for minutes in (5, 35, 95, 125):
        world.loki.push(WEB, "systemd[1]: Started Daily apt download activities.", at=world.ago(minutes))
    world.loki.push(WEB, "systemd[1]: Started nginx-canary.service.", at=world.ago(6))
    ctx = world.context(make_alert({"instance": "web1:9100"}, starts_at=world.ago(4)))
    items = (await log_errors.run(ctx)).evidence
    assert [e.title for e in items] == ["restart: systemd[1]: Started nginx-canary.service."]


async def test_a_quiet_window_has_no_changes(world: EngineWorld) -> None:
    world.loki.push(WEB, "GET /index 200", at=world.ago(3))
    world.pbs.add_datastore("main")
    ctx = world.context(make_alert({"instance": "web1:9100"}, starts_at=world.ago(5)))
    assert (await changes.run(ctx)).evidence == ()
    assert not ctx.partial_failures


async def test_failed_maintenance_of_the_alerts_datastore_is_left_to_the_backups_check(world: EngineWorld) -> None:
    for store in ("backup-hdd", "fast-ssd"):
        world.pbs.add_datastore(store)
        world.pbs.add_task(
            "garbage_collection", store, starttime=world.epoch_ago(30), endtime=world.epoch_ago(29), status="EIO"
        )
    alert = make_alert({"datastore": "backup-hdd"}, starts_at=world.ago(5))
    items = (await changes.run(world.context(alert, world.deps("pbs")))).evidence
    # the failure's reason comes from the task's log
    assert [e.title for e in items] == ["PBS garbage collection fast-ssd (failed): EIO"]
