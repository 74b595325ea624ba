"""The incident's neighbourhood: the guest's node, the storage server behind a mount, the backup server, declared
dependencies — found from what the triage knows, weighted by distance, and searched by the log check."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.engine import EngineWorld, make_alert
from triage.pipeline.checks import log_errors
from triage.pipeline.checks._neighbourhood import WEIGHTS, about_backups, remote_server, resolve, upid_node
from triage.topology import Topology


@pytest.fixture
async def world() -> AsyncIterator[EngineWorld]:
    w = EngineWorld()
    yield w
    await w.aclose()


@pytest.mark.parametrize(
    ("device", "server"),
    [
        ("nas01:/export/media", "nas01"),
        ("NAS01.lan:/volume1", "nas01.lan"),
        ("//files/share", "files"),
        ("backup@storage02:/srv/backups", "storage02"),
        ("[fd00::5]:/export", "fd00::5"),
        ("/dev/sda1", None),
        ("tank/data", None),
        ("", None),
    ],
)
def test_the_server_of_a_network_filesystem_is_read_from_its_device(device: str, server: str | None) -> None:
    assert remote_server(device) == server


def test_backup_alerts_are_recognised_by_name_or_by_a_datastore_label() -> None:
    assert about_backups("VzdumpBackupFailed", {})
    assert about_backups("PBSDatastoreFull", {})
    assert about_backups("DiskFull", {"datastore": "main"})
    assert not about_backups("HostHighCpu", {"instance": "web1:9100"})


def test_a_task_id_names_the_server_that_ran_it() -> None:
    assert upid_node("UPID:pbs-mira:00000A:0000FF:00000001:6745A0C1:backup:store:root@pam:") == "pbs-mira"
    assert upid_node("UPID:localhost:00000A:0000FF:00000001:6745A0C1:backup::root@pam:") is None
    assert upid_node("garbage") is None


async def test_places_are_the_target_then_its_neighbours_nearest_first() -> None:
    topology = Topology.parse({"hosts": {"photos": {"depends_on": ["pgdb01"]}, "pgdb01": {"aliases": ["postgres"]}}})

    async def mounts(names: tuple[str, ...]) -> list[str]:
        assert "photos" in names
        return ["nas01"]

    async def backup_host() -> str | None:
        return "pbs-mira"

    places = await resolve(
        ["photos.lan", "10.0.0.5"],
        node="pve1",
        device=None,
        mountpoint=None,
        backup_related=True,
        backup_url="https://10.0.0.9:8007",
        topology=topology,
        mounts=mounts,
        backup_host=backup_host,
    )
    assert [(p.role, p.name) for p in places] == [
        ("target", "photos"),
        ("node", "pve1"),
        ("storage", "nas01"),
        ("backup", "pbs-mira"),
        ("dependency", "pgdb01"),
    ]
    assert [p.weight for p in places] == [WEIGHTS[p.role] for p in places]
    assert "postgres" in places[-1].names and "10.0.0.9" in places[3].names
    assert places[1].describe("disk errors") == "disk errors (on node pve1)"
    assert places[0].describe("disk errors") == "disk errors"


async def test_the_alerts_own_mount_device_names_the_storage_server_without_a_query() -> None:
    async def no_query(names: tuple[str, ...]) -> list[str]:
        raise AssertionError("the device label already names the server")

    places = await resolve(
        ["plex01"],
        node=None,
        device="apollo:/volume1/media",
        mountpoint="/mnt/media",
        backup_related=False,
        backup_url=None,
        topology=None,
        mounts=no_query,
    )
    assert [(p.role, p.name) for p in places] == [("target", "plex01"), ("storage", "apollo")]


async def test_the_nodes_kernel_log_is_searched_and_says_where_it_came_from(world: EngineWorld) -> None:
    world.proxmox.add_node("pve7")
    world.proxmox.add_guest(420, "forgejo", node="pve7", kind="lxc", ips=["10.0.21.20"])
    kernel = {"host": "pve7", "job": "systemd-journal", "unit": "kernel"}
    for minutes in range(10, 120, 10):
        world.loki.push(kernel, "EXT4-fs (dm-1): mounted filesystem", at=world.ago(minutes + 70))
    world.loki.push(kernel, "blk_update_request: I/O error, dev sdb, sector 2048 op 0x0:(READ)", at=world.ago(9))
    world.loki.push(
        {"host": "pve7", "job": "systemd-journal", "unit": "pvedaemon.service"},
        "pvedaemon[2231]: <root@pam> update VM 420: -memory 2048",
        at=world.ago(12),
    )
    world.loki.push({"host": "forgejo", "job": "docker"}, "request took 5s", at=world.ago(6))
    world.loki.push({"host": "forgejo", "job": "docker"}, "cannot reach pve7: no route to host", at=world.ago(6))
    ctx = world.context(make_alert({"instance": "forgejo:9100"}, starts_at=world.ago(5)))
    items = {e.data["template"]: e for e in (await log_errors.run(ctx)).evidence}
    io_error = items["blk_update_request: I/O error, dev sdb, sector <n> op <hex>:(READ)"]
    assert io_error.title.endswith("(on node pve7)") and io_error.data["place"] == "node"
    # a line on the node that names the guest counts as the guest's own
    update = items["pvedaemon[<n>]: <root@pam> update VM <n>: -memory <n>"]
    assert update.kind == "config"
    # both are single new lines with error or change words: only the place's weight tells them apart
    assert io_error.score == pytest.approx(update.score * WEIGHTS["node"])
    assert update.data["about_target"] and not io_error.data["about_target"]
    # a line of the target that names a neighbour points there; one that names none points nowhere
    assert items["cannot reach pve7: no route to host"].data["points_at"] == ["pve7"]
    assert "points_at" not in items["request took <n>s"].data
