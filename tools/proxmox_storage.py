"""Where a Proxmox guest's disks live: the disk keys of its configuration, the datacenter's storage configuration
(``/storage``) and a node's storage status (``/nodes/{node}/storage``).

A disk is a configuration key whose value is a property string, ``STORAGE:VOLUME,opt=…`` (the volume may also be
given as ``file=``/``volume=``). VMs keep disks in ``ideN``, ``sataN``, ``scsiN``, ``virtioN``, ``efidisk0`` and
``tpmstate0``; containers in ``rootfs`` and ``mpN``. ``unusedN`` volumes are detached and not read. A CD-ROM
(``media=cdrom``, or the empty drive ``none``), a pass-through device and a bind mount (absolute paths) live on no
storage. The storage id follows PVE's ``parse_volume_id`` (``PVE::Storage::Plugin``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import Field

from tools.proxmox_models import GuestKind, _Model

_QEMU_DISK = re.compile(r"^(?:(?:ide|sata|scsi|virtio)\d+|efidisk0|tpmstate0)$")
_LXC_DISK = re.compile(r"^(?:rootfs|mp\d+)$")
_VOLUME_ID = re.compile(r"^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$", re.IGNORECASE)
# PVE's "-list" formats (``nodes``, ``monhost``) split on commas, semicolons and white space
_LIST = re.compile(r"[\s,;]+")
# storage fields naming a remote host: NFS/CIFS/PBS/GlusterFS ``server``/``server2``, iSCSI and ZFS-over-iSCSI
# ``portal``, Ceph ``monhost`` (absent for the cluster's own hyper-converged Ceph)
_SERVER_FIELDS = ("server", "server2", "portal", "monhost")
THIN_TYPES = frozenset({"lvmthin", "zfspool", "zfs", "rbd"})


@dataclass(frozen=True)
class GuestDisk:
    """One disk of a guest: its configuration ``key`` (``scsi0``, ``rootfs``), ``storage`` id and ``volume`` name."""

    key: str
    storage: str
    volume: str


def _options(value: str) -> tuple[str | None, dict[str, str]]:
    """A property string's unnamed first value and its ``key=value`` options."""
    first: str | None = None
    options: dict[str, str] = {}
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, rest = part.partition("=")
        if sep and re.fullmatch(r"[a-z][a-z0-9_-]*", key):
            options[key] = rest.strip()
        elif first is None:
            first = part
    return first, options


def parse_disk(key: str, value: str, kind: GuestKind) -> GuestDisk | None:
    """The disk a configuration entry holds, or None (not a disk key, a CD-ROM, a device or bind mount, no
    storage prefix)."""
    if not (_QEMU_DISK if kind == "qemu" else _LXC_DISK).match(key):
        return None
    first, options = _options(value)
    volume = options.get("file" if kind == "qemu" else "volume", first)
    if not volume or volume == "none" or options.get("media") == "cdrom" or volume.startswith("/"):
        return None
    match = _VOLUME_ID.match(volume)
    if match is None:
        return None
    return GuestDisk(key, match.group(1), match.group(2))


def guest_disks(values: dict[str, str], kind: GuestKind) -> list[GuestDisk]:
    """Every disk of a guest configuration, in key order."""
    disks = (parse_disk(key, value, kind) for key, value in sorted(values.items()))
    return [disk for disk in disks if disk is not None]


def portal_host(portal: str) -> str | None:
    """The host of ``host[:port]``, ``[v6]:port`` or a bare IPv6 address (``PVE::Tools::parse_host_and_port``)."""
    text = portal.strip()
    if not text:
        return None
    if text.startswith("["):
        host = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        host = text.split(":", 1)[0]
    else:
        host = text
    return host.lower() or None


class StorageConfig(_Model):
    """One entry of ``/storage``: the storage ``type`` (plugin) and the keys that say where it lives."""

    storage: str
    type: str
    content: str = ""
    nodes: str | None = None
    disable: bool = False
    shared: bool = False
    server: str | None = None
    server2: str | None = None
    export: str | None = None
    share: str | None = None
    portal: str | None = None
    target: str | None = None
    monhost: str | None = None
    pool: str | None = None
    vgname: str | None = None
    thinpool: str | None = None
    path: str | None = None
    datastore: str | None = None
    namespace: str | None = None
    volume: str | None = None

    @property
    def node_list(self) -> list[str]:
        """The nodes the storage is limited to (empty: every node)."""
        return [n for n in _LIST.split(self.nodes or "") if n]

    @property
    def servers(self) -> list[str]:
        """The remote hosts behind the storage, in the order the configuration names them (none for a local one)."""
        found: list[str] = []
        for name in _SERVER_FIELDS:
            raw = getattr(self, name)
            for item in _LIST.split(raw or "") if name == "monhost" else [raw or ""]:
                host = portal_host(item) if name in ("portal", "monhost") else item.strip().lower()
                if host:
                    found.append(host)
        return list(dict.fromkeys(found))

    @property
    def location(self) -> str:
        """Where on its host the data is: ``export /volume1/pve``, ``pool rpool/data``, ``thin pool pve/data``."""
        if self.thinpool:
            return f"thin pool {self.vgname}/{self.thinpool}" if self.vgname else f"thin pool {self.thinpool}"
        for label, value in (
            ("export", self.export),
            ("share", self.share),
            ("datastore", self.datastore),
            ("volume", self.volume),
            ("pool", self.pool),
            ("volume group", self.vgname),
            ("path", self.path),
        ):
            if value:
                return f"{label} {value}"
        return ""


class StorageStatus(_Model):
    """One row of ``/nodes/{node}/storage``: whether the storage is ``enabled`` (not disabled, meant for the node)
    and ``active`` (reachable, mounted), and its size in bytes. An inactive storage reports no size."""

    storage: str
    type: str = ""
    content: str = ""
    active: bool = False
    enabled: bool = True
    shared: bool = False
    total: int = 0
    used: int = 0
    avail: int = 0
    used_fraction: float | None = Field(default=None)

    @property
    def used_ratio(self) -> float | None:
        """The used share of the storage, None when it reports no size."""
        if self.used_fraction is not None:
            return self.used_fraction
        return self.used / self.total if self.total else None
