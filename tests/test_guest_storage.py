"""The storage behind a guest's disks: disk keys and storage configurations as PVE writes them, the storage server as
a place of the neighbourhood, and the finding when the storage holding the guest's disk is the problem."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.engine import EngineWorld, make_alert
from tools.proxmox_storage import GuestDisk, StorageConfig, StorageStatus, guest_disks, parse_disk, portal_host
from triage.pipeline.checks import guest_status, guest_storage
from triage.pipeline.checks._disk_storage import DiskStorage, disk_storages
from triage.pipeline.checks._neighbourhood import WEIGHTS, resolve

GIB = 1 << 30


@pytest.fixture
async def world() -> AsyncIterator[EngineWorld]:
    w = EngineWorld()
    yield w
    await w.aclose()


@pytest.mark.parametrize(
    ("key", "value", "kind", "disk"),
    [
        ("scsi0", "local-lvm:vm-100-disk-0,size=32G", "qemu", GuestDisk("scsi0", "local-lvm", "vm-100-disk-0")),
        (
            "virtio1",
            "nas-nfs:100/vm-100-disk-1.qcow2,cache=none,size=64G",
            "qemu",
            GuestDisk("virtio1", "nas-nfs", "100/vm-100-disk-1.qcow2"),
        ),
        ("sata2", "file=ceph-ext:vm-100-disk-2,discard=on", "qemu", GuestDisk("sata2", "ceph-ext", "vm-100-disk-2")),
        (
            "ide0",
            "size=8G,file=iscsi-lun:0.0.1.scsi-36001405",
            "qemu",
            GuestDisk("ide0", "iscsi-lun", "0.0.1.scsi-36001405"),
        ),
        (
            "efidisk0",
            "local-zfs:vm-100-disk-3,efitype=4m,pre-enrolled-keys=1,size=1M",
            "qemu",
            GuestDisk("efidisk0", "local-zfs", "vm-100-disk-3"),
        ),
        (
            "tpmstate0",
            "local-lvm:vm-100-disk-4,size=4M,version=v2.0",
            "qemu",
            GuestDisk("tpmstate0", "local-lvm", "vm-100-disk-4"),
        ),
        ("ide2", "none,media=cdrom", "qemu", None),
        ("ide2", "local:iso/debian-12.iso,media=cdrom,size=628M", "qemu", None),
        ("scsi3", "/dev/disk/by-id/ata-WDC_WD40EFRX-68N32N0_WD-WCC7K1TF4L2S,backup=0", "qemu", None),
        ("scsi4", "vm-100-disk-5,size=8G", "qemu", None),
        ("unused0", "local-lvm:vm-100-disk-6", "qemu", None),
        ("net0", "virtio=BC:24:11:00:00:01,bridge=vmbr0", "qemu", None),
        ("rootfs", "local-lvm:vm-101-disk-0,size=8G", "lxc", GuestDisk("rootfs", "local-lvm", "vm-101-disk-0")),
        (
            "mp0",
            "tank:subvol-101-disk-1,mp=/srv/data,backup=1,size=100G",
            "lxc",
            GuestDisk("mp0", "tank", "subvol-101-disk-1"),
        ),
        (
            "mp1",
            "mp=/srv/media,volume=nas-cifs:101/vm-101-disk-2.raw",
            "lxc",
            GuestDisk("mp1", "nas-cifs", "101/vm-101-disk-2.raw"),
        ),
        ("mp2", "/mnt/pve/media,mp=/media,ro=1", "lxc", None),
        ("mp3", "/dev/sdb1,mp=/mnt/usb", "lxc", None),
        ("scsi0", "local-lvm:vm-101-disk-0", "lxc", None),
        ("", "", "qemu", None),
    ],
)
def test_a_disk_entry_names_its_storage(key: str, value: str, kind: str, disk: GuestDisk | None) -> None:
    assert parse_disk(key, value, "lxc" if kind == "lxc" else "qemu") == disk


def test_every_disk_of_a_configuration_is_read_in_key_order() -> None:
    values = {
        "scsi1": "nas-nfs:100/vm-100-disk-1.qcow2,size=64G",
        "scsi0": "local-lvm:vm-100-disk-0,size=32G",
        "ide2": "none,media=cdrom",
        "memory": "4096",
    }
    assert [(d.key, d.storage) for d in guest_disks(values, "qemu")] == [("scsi0", "local-lvm"), ("scsi1", "nas-nfs")]


@pytest.mark.parametrize(
    ("config", "servers", "location"),
    [
        ({"type": "nfs", "server": "NAS01.lan", "export": "/volume1/pve"}, ["nas01.lan"], "export /volume1/pve"),
        ({"type": "cifs", "server": "10.0.0.5", "share": "vmstore"}, ["10.0.0.5"], "share vmstore"),
        ({"type": "glusterfs", "server": "gl1", "server2": "gl2", "volume": "vms"}, ["gl1", "gl2"], "volume vms"),
        ({"type": "iscsi", "portal": "10.0.0.9:3260", "target": "iqn.2003-01.org:lun"}, ["10.0.0.9"], ""),
        ({"type": "zfs", "portal": "[fd00::9]:3260", "pool": "tank/vm"}, ["fd00::9"], "pool tank/vm"),
        ({"type": "iscsidirect", "portal": "fd00::9"}, ["fd00::9"], ""),
        ({"type": "pbs", "server": "pbs01", "datastore": "main"}, ["pbs01"], "datastore main"),
        (
            {"type": "rbd", "monhost": "10.0.1.1 10.0.1.2;10.0.1.3,ceph4:6789", "pool": "rbd"},
            ["10.0.1.1", "10.0.1.2", "10.0.1.3", "ceph4"],
            "pool rbd",
        ),
        ({"type": "rbd", "pool": "vm-pool"}, [], "pool vm-pool"),
        ({"type": "cephfs", "monhost": "mon1", "path": "/mnt/pve/cephfs"}, ["mon1"], "path /mnt/pve/cephfs"),
        ({"type": "lvmthin", "vgname": "pve", "thinpool": "data"}, [], "thin pool pve/data"),
        ({"type": "lvm", "vgname": "san"}, [], "volume group san"),
        ({"type": "zfspool", "pool": "rpool/data", "sparse": 1}, [], "pool rpool/data"),
        ({"type": "dir", "path": "/var/lib/vz", "content": "iso,backup"}, [], "path /var/lib/vz"),
        ({"type": "truenas-custom", "server": "truenas.lan", "apikey": "x"}, ["truenas.lan"], ""),
        ({"type": "btrfs"}, [], ""),
    ],
)
def test_a_storage_configuration_says_which_server_holds_it(
    config: dict[str, object], servers: list[str], location: str
) -> None:
    storage = StorageConfig.model_validate({"storage": "s1", "digest": "0" * 40, **config})
    assert (storage.servers, storage.location) == (servers, location)


def test_storage_node_lists_and_ports_follow_pve_formats() -> None:
    storage = StorageConfig.model_validate({"storage": "s", "type": "dir", "nodes": "pve1,pve2 pve3", "disable": 1})
    assert storage.node_list == ["pve1", "pve2", "pve3"] and storage.disable
    assert portal_host("nas01:3260") == "nas01" and portal_host("") is None
    assert StorageStatus.model_validate({"storage": "s", "total": 100, "used": 95}).used_ratio == 0.95
    assert StorageStatus.model_validate({"storage": "s", "active": 0, "total": 0}).used_ratio is None


def test_disks_group_by_storage_and_an_unlisted_storage_has_no_server() -> None:
    disks = [GuestDisk("scsi0", "nas-nfs", "a"), GuestDisk("scsi1", "hidden", "b"), GuestDisk("scsi2", "nas-nfs", "c")]
    nfs = StorageConfig(storage="nas-nfs", type="nfs", server="nas01", export="/pve")
    found = disk_storages(disks, [nfs])
    assert found == [DiskStorage("nas-nfs", ("scsi0", "scsi2"), nfs), DiskStorage("hidden", ("scsi1",), None)]
    assert found[0].describe() == "nas-nfs (nfs, server nas01)" and found[1].describe() == "hidden"
    assert found[1].servers == []


def _vm_on_nfs(world: EngineWorld, *, active: bool = True, used: int = 300 * GIB) -> None:
    world.proxmox.add_node("altair")
    world.proxmox.add_guest(
        460, "docspell", node="altair", config={"scsi0": "nas-nfs:460/vm-460-disk-0.qcow2,size=64G"}
    )
    world.proxmox.add_storage(
        "nas-nfs", "nfs", server="nas01.lab.example", export="/volume1/pve", total=1000 * GIB, used=used, active=active
    )


async def test_the_nfs_server_behind_the_guest_disk_is_a_storage_place(world: EngineWorld) -> None:
    _vm_on_nfs(world)
    ctx = world.context(make_alert({"instance": "docspell:9100"}, starts_at=world.ago(5)), world.deps("proxmox"))
    places = {p.role: p for p in await ctx.places()}
    assert places["node"].name == "altair"
    storage = places["storage"]
    assert storage.name == "nas01.lab.example" and storage.where == "on storage server nas01.lab.example"
    assert {"nas01", "nas-nfs"} <= set(storage.names)
    assert storage.weight == places["node"].weight


async def test_a_local_storage_adds_no_place(world: EngineWorld) -> None:
    world.proxmox.add_node("vega")
    world.proxmox.add_guest(430, "plex01", node="vega")
    world.proxmox.add_storage("local-lvm", "lvmthin", vgname="pve", thinpool="data")
    ctx = world.context(make_alert({"instance": "plex01:9100"}, starts_at=world.ago(5)), world.deps("proxmox"))
    assert [p.role for p in await ctx.places()] == ["target", "node"]
    found = await ctx.guest_storage()
    assert found is not None and found.storages[0].describe() == "local-lvm (lvmthin, thin pool pve/data)"
    assert not ctx.partial_failures


async def test_a_token_without_datastore_audit_gives_no_storage_place_and_a_note(world: EngineWorld) -> None:
    _vm_on_nfs(world, active=False)
    world.proxmox.storage_audit = False
    ctx = world.context(make_alert({"instance": "docspell:9100"}, starts_at=world.ago(5)), world.deps("proxmox"))
    assert [p.role for p in await ctx.places()] == ["target", "node"]
    note = ctx.partial_failures["neighbourhood:storage"]
    assert not note.ok and "nas-nfs" in (note.error or "") and "Datastore.Audit" in (note.error or "")
    assert (await guest_storage.run(ctx)).evidence == ()


async def test_a_refused_storage_listing_is_a_note_not_a_failed_triage(world: EngineWorld) -> None:
    _vm_on_nfs(world)
    world.proxmox.fail_next(5, status=403, body='{"data":null}', path_prefix="/api2/json/storage")
    ctx = world.context(make_alert({"instance": "docspell:9100"}, starts_at=world.ago(5)), world.deps("proxmox"))
    assert [p.role for p in await ctx.places()] == ["target", "node"]
    assert ctx.partial_failures["neighbourhood:storage"].ok is False
    found = await ctx.guest_storage()
    assert found is not None and found.storages[0].config is None


async def test_an_inactive_storage_holding_the_guest_disk_is_a_strong_finding(world: EngineWorld) -> None:
    _vm_on_nfs(world, active=False)
    ctx = world.context(make_alert({"instance": "docspell:9100"}, starts_at=world.ago(5)), world.deps("proxmox"))
    (item,) = (await guest_storage.run(ctx)).evidence
    assert item.title == (
        "Storage nas-nfs (nfs, server nas01.lab.example) holding VM 460 (docspell)'s disk is not active on node altair"
    )
    assert item.score >= 0.9 and item.data["disks"] == ["scsi0"]


async def test_a_nearly_full_storage_scores_by_how_full_a_thin_pool_highest(world: EngineWorld) -> None:
    world.proxmox.add_node("mimosa")
    world.proxmox.add_guest(491, "nextcloud", node="mimosa")
    world.proxmox.add_storage("local-lvm", "lvmthin", vgname="pve", thinpool="data", total=100 * GIB, used=100 * GIB)
    ctx = world.context(make_alert({"instance": "nextcloud:9100"}, starts_at=world.ago(5)), world.deps("proxmox"))
    (item,) = (await guest_storage.run(ctx)).evidence
    assert "100% full" in item.title and "thin pool pve/data" in item.title
    assert item.score == guest_storage.FULL_TOP_SCORE
    assert guest_storage.full_score(0.9, thin=False) < guest_storage.full_score(0.95, thin=False) < 0.92
    assert guest_storage.full_score(0.99, thin=True) == guest_storage.FULL_TOP_SCORE


async def test_a_full_or_inactive_storage_without_the_guest_disks_is_not_reported(world: EngineWorld) -> None:
    world.proxmox.add_node("mimosa")
    world.proxmox.add_guest(491, "nextcloud", node="mimosa")
    world.proxmox.add_storage("local-lvm", "lvmthin", vgname="pve", thinpool="data", used=1 << 38)
    world.proxmox.add_storage("nas-iso", "nfs", server="nas01", export="/iso", content="iso", active=False)
    world.proxmox.add_storage("local", "dir", path="/var/lib/vz", total=100 * GIB, used=99 * GIB)
    ctx = world.context(make_alert({"instance": "nextcloud:9100"}, starts_at=world.ago(5)), world.deps("proxmox"))
    (item,) = (await guest_storage.run(ctx)).evidence
    assert item.score == guest_storage.CONTEXT_SCORE
    assert "nas-iso" not in item.title and "local-lvm" in item.title


async def test_a_vm_paused_with_io_error_says_so(world: EngineWorld) -> None:
    world.proxmox.add_node("mimosa")
    world.proxmox.add_guest(491, "nextcloud", node="mimosa", qmpstatus="io-error")
    ctx = world.context(make_alert({"instance": "nextcloud:9100"}, starts_at=world.ago(5)), world.deps("proxmox"))
    items = [e for e in (await guest_status.run(ctx)).evidence if e.kind == "guest_status"]
    assert [i.title for i in items] == ["VM 491 (nextcloud) is paused (io-error) on mimosa"]
    assert items[0].score >= 0.9 and "disk write failed" in items[0].detail


async def test_a_disk_storage_server_and_a_mount_on_the_same_server_are_one_place() -> None:
    async def mounts(names: tuple[str, ...]) -> list[str]:
        return ["nas01", "files02"]

    places = await resolve(
        ["web1"],
        node="pve1",
        device=None,
        mountpoint=None,
        disk_servers=[("NAS01", ("NAS-NFS",)), ("ceph-mon1", ("ceph-ext",))],
        backup_related=False,
        backup_url=None,
        topology=None,
        mounts=mounts,
    )
    storage = [p for p in places if p.role == "storage"]
    assert [p.name for p in storage] == ["nas01", "ceph-mon1"]
    assert "nas-nfs" in storage[0].names and storage[0].weight == WEIGHTS["storage"]


async def test_the_alerts_own_mount_comes_before_the_disk_storages() -> None:
    places = await resolve(
        ["web1"],
        node=None,
        device="files02:/export/media",
        mountpoint="/mnt/media",
        disk_servers=[("nas01", ("nas-nfs",)), ("files02", ("files-cifs",))],
        backup_related=False,
        backup_url=None,
        topology=None,
        mounts=None,
    )
    storage = [p for p in places if p.role == "storage"]
    assert [p.name for p in storage] == ["files02", "nas01"]
    assert "files-cifs" in storage[0].names
