"""Guest status and backup checks against the Proxmox VE and PBS fakes: healthy, anomalous, failing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.engine import EngineWorld, make_alert
from tools.errors import SourceError
from triage.pipeline.checks import backups, guest_status
from triage.pipeline.checks.check_context import CheckFailed
from triage.pipeline.ranking import rank


@pytest.fixture
async def world() -> AsyncIterator[EngineWorld]:
    w = EngineWorld()
    w.proxmox.add_node("pve1")
    w.proxmox.add_node("pve2")
    yield w
    await w.aclose()


def by_kind(items: list, kind: str) -> list:  # type: ignore[type-arg]
    return [e for e in items if e.kind == kind]


async def test_healthy_guest_found_by_its_ip_gives_one_low_scored_context_line(world: EngineWorld) -> None:
    world.proxmox.add_guest(105, "jellyfin", node="pve1", static_ips=["10.0.0.12"], uptime=12 * 86400)
    ctx = world.context(make_alert({"instance": "10.0.0.12:9100"}, starts_at=world.ago(5)))
    items = (await guest_status.run(ctx)).evidence
    assert len(items) == 1
    assert items[0].title.startswith("VM 105 (jellyfin) is running on pve1, up 12.0 days")
    assert items[0].score < 0.1


async def test_guest_rebooted_inside_the_window_is_reported_with_its_boot_time(world: EngineWorld) -> None:
    world.proxmox.add_guest(105, "jellyfin", node="pve1", uptime=8 * 60)
    ctx = world.context(make_alert({"instance": "jellyfin:9100"}, starts_at=world.ago(5)))
    items = (await guest_status.run(ctx)).evidence
    reboot = [e for e in items if "rebooted" in e.title]
    assert reboot and reboot[0].score >= 0.8
    assert reboot[0].at == world.ago(8)


async def test_stopped_guest_and_memory_near_its_limit_are_anomalies(world: EngineWorld) -> None:
    world.proxmox.add_guest(201, "db", node="pve2", status="stopped")
    world.proxmox.add_guest(202, "cache", node="pve2", mem=int(3.9 * (1 << 30)), maxmem=4 << 30, uptime=86400 * 3)
    stopped = (await guest_status.run(world.context(make_alert({"vmid": "201"}, starts_at=world.ago(5))))).evidence
    assert any(e.title == "VM 201 (db) is stopped on pve2" and e.score > 0.9 for e in stopped)
    memory = (await guest_status.run(world.context(make_alert({"vmid": "202"}, starts_at=world.ago(5))))).evidence
    assert any("97% of its 4.0 GiB memory limit" in e.title for e in memory)


async def test_offline_node_is_reported_with_the_guests_last_known_state(world: EngineWorld) -> None:
    world.proxmox.add_guest(301, "nas", node="pve2")
    world.proxmox.nodes["pve2"]["online"] = False
    items = (
        await guest_status.run(world.context(make_alert({"vmid": "301", "node": "pve2"}, starts_at=world.ago(5))))
    ).evidence
    assert any(e.title == "Proxmox node pve2 is offline" for e in items)


async def test_failing_proxmox_api_fails_the_guest_check_with_a_source_error(world: EngineWorld) -> None:
    world.proxmox.add_guest(105, "jellyfin", node="pve1")
    world.proxmox.fail_next(20, status=500)
    with pytest.raises(SourceError) as raised:
        await guest_status.run(world.context(make_alert({"vmid": "105"}, starts_at=world.ago(5))))
    assert world.proxmox.token_secret not in str(raised.value)


async def test_a_backup_running_across_the_alert_start_ranks_high_and_names_the_guest(world: EngineWorld) -> None:
    world.proxmox.add_guest(105, "jellyfin", node="pve1")
    world.pbs.add_datastore("main")
    world.pbs.add_task("backup", "main:vm/105", starttime=world.epoch_ago(20))
    world.pbs.add_task("backup", "main:vm/999", starttime=world.epoch_ago(500), endtime=world.epoch_ago(480))
    items = (await backups.run(world.context(make_alert({"vmid": "105"}, starts_at=world.ago(5))))).evidence
    assert len(items) == 1
    assert items[0].title == "PBS backup main:vm/105 running during the alert start"
    assert items[0].score >= 0.9
    assert items[0].data["active_until"] is None


async def test_vzdump_and_full_datastore_are_found_while_quiet_times_give_nothing(world: EngineWorld) -> None:
    ctx = world.context(make_alert({"instance": "pve1:9100"}, starts_at=world.ago(5)))
    world.pbs.add_datastore("main")
    assert (await backups.run(ctx)).evidence == ()
    world.pbs.add_datastore("full", total=100 << 30, used=97 << 30)
    world.proxmox.add_task(node="pve1", type="vzdump", starttime=world.epoch_ago(40), endtime=world.epoch_ago(15))
    items = (await backups.run(world.context(make_alert({"instance": "pve1:9100"}, starts_at=world.ago(5))))).evidence
    assert {e.kind for e in items} == {"backup", "datastore"}
    assert any(e.title == "PBS datastore full is 97% full" for e in items)


async def test_backups_survive_one_failing_source_and_fail_when_both_do(world: EngineWorld) -> None:
    world.pbs.add_datastore("main")
    world.pbs.add_task("backup", "main:vm/105", starttime=world.epoch_ago(10))
    world.proxmox.fail_next(50, status=500)
    ctx = world.context(make_alert({"vmid": "105"}, starts_at=world.ago(5)))
    items = (await backups.run(ctx)).evidence
    assert len(items) == 1 and "backups:proxmox" in ctx.partial_failures
    world.pbs.fail_next(50, status=500)
    with pytest.raises(CheckFailed):
        await backups.run(world.context(make_alert({"vmid": "105"}, starts_at=world.ago(5))))


async def test_failed_garbage_collection_of_the_alerts_datastore_outranks_backups_that_finished_ok(
    world: EngineWorld,
) -> None:
    world.pbs.add_datastore("backup-hdd", total=4 << 40, used=int(3.82 * (1 << 40)))
    world.pbs.add_datastore("fast-ssd", total=1 << 40, used=1 << 39)
    world.pbs.add_task(
        "garbage_collection",
        "backup-hdd",
        starttime=world.epoch_ago(38),
        endtime=world.epoch_ago(37),
        status="unable to start garbage collection job on datastore backup-hdd - already running (stale lock)",
    )
    world.pbs.add_task("backup", "backup-hdd:vm/251", starttime=world.epoch_ago(12), endtime=world.epoch_ago(2))
    world.pbs.add_task("verificationjob", "fast-ssd:v-3a1f", starttime=world.epoch_ago(50), endtime=world.epoch_ago(44))
    alert = make_alert({"datastore": "backup-hdd", "instance": "pbs-exporter:10019"}, starts_at=world.ago(0))
    items = (await backups.run(world.context(alert))).evidence
    ranked = rank(items, alert.starts_at)
    assert ranked[0].kind == "maintenance"
    assert ranked[0].title.startswith("PBS garbage collection of datastore backup-hdd failed: unable to start")
    assert "no successful garbage collection since" in ranked[0].detail
    assert ranked[1].kind == "datastore" and ranked[1].title.startswith("PBS datastore backup-hdd is 95% full")
    backup = next(e for e in ranked if e.kind == "backup")
    assert ranked[0].score > backup.score + 0.25


async def test_a_garbage_collection_that_succeeded_after_failing_is_no_longer_reported(world: EngineWorld) -> None:
    world.pbs.add_datastore("main")
    world.pbs.add_task(
        "garbage_collection",
        "main",
        starttime=world.epoch_ago(600),
        endtime=world.epoch_ago(590),
        status="TASK ERROR: stale lock",
    )
    world.pbs.add_task("garbage_collection", "main", starttime=world.epoch_ago(120), endtime=world.epoch_ago(100))
    items = (await backups.run(world.context(make_alert({"store": "main"}, starts_at=world.ago(5))))).evidence
    assert [e.kind for e in items] == ["datastore"]
    assert items[0].score < 0.3 and items[0].title.startswith("PBS datastore main is")


async def test_repeated_prune_failures_on_the_alerts_datastore_count_the_streak_from_the_first(
    world: EngineWorld,
) -> None:
    world.pbs.add_datastore("main", total=100 << 30, used=92 << 30)
    for hours_ago in (50, 26, 2):
        world.pbs.add_task(
            "prunejob",
            "main:daily",
            starttime=world.epoch_ago(hours_ago * 60),
            endtime=world.epoch_ago(hours_ago * 60 - 1),
            status="TASK ERROR: EIO",
        )
    world.pbs.add_task(
        "prunejob", "other:daily", starttime=world.epoch_ago(30), endtime=world.epoch_ago(29), status="TASK ERROR: EIO"
    )
    items = (await backups.run(world.context(make_alert({"datastore": "main"}, starts_at=world.ago(5))))).evidence
    (prune,) = [e for e in items if e.kind == "maintenance"]
    assert prune.title == "PBS prune of datastore main failed: TASK ERROR: EIO"
    assert prune.detail.startswith("3 failed runs in a row")
    assert prune.data["active_from"] == world.epoch_ago(50 * 60) and prune.data["active_until"] is None
    (usage,) = [e for e in items if e.kind == "datastore"]
    assert usage.title == "PBS datastore main is 92% full, 8 GiB free" and usage.score >= 0.75


async def test_an_unavailable_named_datastore_is_reported_with_its_error(world: EngineWorld) -> None:
    world.pbs.add_datastore("usb", error="mount point /mnt/usb is not mounted")
    items = (await backups.run(world.context(make_alert({"datastore": "usb"}, starts_at=world.ago(5))))).evidence
    assert [e.title for e in items] == ["PBS datastore usb is unavailable: mount point /mnt/usb is not mounted"]


async def test_a_failed_backup_says_why_in_its_title_from_its_task_log(world: EngineWorld) -> None:
    reason = (
        "ERROR: Backup of VM 440 failed - backup write data failed: unable to open chunk store 'offsite' - "
        "No such file or directory (os error 2)"
    )
    world.proxmox.add_task(
        node="pve1",
        type="vzdump",
        starttime=world.epoch_ago(30),
        endtime=world.epoch_ago(6),
        status="job errors",
        log=["INFO: Starting Backup of VM 440 (lxc)", reason, "INFO: Failed at 02:28:01", "INFO: Backup job finished"],
    )
    world.pbs.add_datastore("offsite")
    world.pbs.add_task(
        "backup",
        "offsite:ct/440",
        starttime=world.epoch_ago(29),
        endtime=world.epoch_ago(28),
        status="unable to open chunk store",
        log=["starting new backup on datastore 'offsite'"],
    )
    # a backup that went fine has nothing to explain: its log is not read
    world.proxmox.add_task(node="pve2", type="vzdump", starttime=world.epoch_ago(20), endtime=world.epoch_ago(10))
    items = (await backups.run(world.context(make_alert({"instance": "pve1:9100"}, starts_at=world.ago(5))))).evidence
    titles = sorted(e.title for e in items)
    assert f"vzdump job on pve1 failed during the alert start: {reason}" in titles
    assert "PBS backup offsite:ct/440 failed in the window: unable to open chunk store" in titles
    assert "vzdump job on pve2 finished in the window" in titles
