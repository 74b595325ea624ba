"""Proxmox VE and PBS detail where causes usually are: the log line that explains a failed or long task, guest
configuration waiting for the next start, and datastore namespaces."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.engine import EngineWorld, make_alert
from tools.proxmox_models import PendingChange
from triage.pipeline.checks import changes, guest_status
from triage.pipeline.checks._task_logs import telling_line


@pytest.fixture
async def world() -> AsyncIterator[EngineWorld]:
    w = EngineWorld()
    yield w
    await w.aclose()


def test_the_telling_line_of_a_task_log_is_its_error() -> None:
    # a bare "job errors" repeats the task's status: the line with the reason says more
    assert telling_line(["INFO: starting", "ERROR: unable to open chunk store", "TASK ERROR: job errors"]) == (
        "ERROR: unable to open chunk store"
    )
    assert telling_line(["ERROR: x", "TASK ERROR: unable to acquire lock"]) == "unable to acquire lock"
    assert telling_line(["INFO: starting", "TASK ERROR: job errors"]) == "job errors"
    # an error with its reason beats a later line that only says "failed"
    assert telling_line(["ERROR: Backup of VM 440 failed - no space left", "INFO: Failed at 02:28:01"]) == (
        "ERROR: Backup of VM 440 failed - no space left"
    )
    assert telling_line(["INFO: starting", "WARN: skipped vm 101: lock", "TASK OK"]) == "WARN: skipped vm 101: lock"
    assert telling_line(["INFO: starting", "TASK OK"]) is None


async def test_a_failed_task_says_why_from_its_log(world: EngineWorld) -> None:
    world.proxmox.add_node("pve1")
    world.proxmox.add_guest(105, "web1", node="pve1")
    world.proxmox.add_task(
        "pve1",
        "qmigrate",
        starttime=world.epoch_ago(9),
        endtime=world.epoch_ago(8),
        status="migration problems",
        vmid=105,
        log=["2026-03-01 11:51:00 starting migration of VM 105 to node 'pve2'", "ERROR: no space left on device"],
    )
    ctx = world.context(make_alert({"instance": "web1:9100"}, starts_at=world.ago(5)))
    (item,) = (await changes.run(ctx)).evidence
    assert item.title.startswith("Proxmox qmigrate of 105 on pve1 (failed: migration problems): ")
    assert item.title.endswith("migration problems") or "no space left on device" in item.title


async def test_a_pbs_sync_running_for_hours_says_what_it_is_doing(world: EngineWorld) -> None:
    world.pbs.add_task(
        "syncjob",
        "offsite:pull",
        starttime=world.epoch_ago(200),
        log=["Starting datastore sync job 'offsite:pull'", "sync group vm/101 failed - connection refused"],
    )
    ctx = world.context(make_alert({"instance": "web1:9100"}, starts_at=world.ago(5)))
    (item,) = (await changes.run(ctx)).evidence
    assert item.title == "PBS sync offsite:pull (running): sync group vm/101 failed - connection refused"


async def test_configuration_waiting_for_the_next_start_is_reported(world: EngineWorld) -> None:
    world.proxmox.add_node("pve1")
    world.proxmox.add_guest(105, "web1", node="pve1", pending={"memory": 2048})
    ctx = world.context(make_alert({"instance": "web1:9100"}, starts_at=world.ago(5)))
    items = {e.kind: e for e in (await guest_status.run(ctx)).evidence}
    pending = items["guest_config"]
    assert pending.title.startswith("VM 105 (web1) has configuration changes waiting for its next start:")
    assert pending.title.endswith("memory 4096 → 2048")
    assert PendingChange(key="net1", value="virtio", delete=1).describe() == "net1 deleted"


async def test_pbs_namespaces_are_listed_and_reach_the_snapshot_listing(world: EngineWorld) -> None:
    world.pbs.add_datastore("main", namespaces=["prod", "prod/db"])
    client = world.pbs.client()
    try:
        assert await client.namespaces("main") == ["", "prod", "prod/db"]
        assert await client.snapshots("main", ns="prod") == []
    finally:
        await client.aclose()
