"""The storages holding the alert's guest's disks, from Proxmox itself.

The guest's configuration names each disk's storage (``scsi0: nas-nfs:460/vm-460-disk-0.qcow2``); the datacenter's
storage configuration says what that storage is: a network storage (NFS, CIFS, GlusterFS, iSCSI, ZFS over iSCSI,
PBS, an external Ceph cluster) names the server the data lives on, a local one (LVM-thin, ZFS pool, directory) its
pool on the node. The first makes the server a neighbour worth searching; both are what the guest's disk IO waits
on when it stalls.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tools.errors import SourceError
from tools.proxmox import ProxmoxClient
from tools.proxmox_models import GuestKind, Resource
from tools.proxmox_storage import GuestDisk, StorageConfig, guest_disks

MAX_SERVERS = 2


@dataclass(frozen=True)
class DiskStorage:
    """One storage holding disks (``disks``: their configuration keys) of the guest; ``config`` is None when the
    storage configuration does not list it (the token may not audit it)."""

    storage: str
    disks: tuple[str, ...]
    config: StorageConfig | None = None

    @property
    def type(self) -> str | None:
        return self.config.type if self.config is not None else None

    @property
    def servers(self) -> list[str]:
        """The remote hosts behind the storage (none for a local or unknown one)."""
        return self.config.servers if self.config is not None else []

    def describe(self) -> str:
        """``nas-nfs (nfs, server nas01)``, ``local-lvm (lvmthin, thin pool pve/data)``, ``local-lvm``."""
        if self.config is None:
            return self.storage
        servers = self.servers
        where = f"server {servers[0]}" if servers else self.config.location
        return f"{self.storage} ({self.config.type}, {where})" if where else f"{self.storage} ({self.config.type})"


@dataclass(frozen=True)
class GuestStorage:
    """Where the disks of one guest live: its ``node``, a display ``label`` (``VM 460 (docspell)``) and its
    ``storages``; ``unseen`` names storages the storage configuration did not list, ``error`` why it could not be
    read at all."""

    node: str
    vmid: int
    kind: GuestKind
    label: str
    storages: tuple[DiskStorage, ...]
    unseen: tuple[str, ...] = ()
    error: SourceError | None = None

    def servers(self) -> list[tuple[str, tuple[str, ...]]]:
        """The network servers behind the guest's disks, each with the ids of its storages, at most
        :data:`MAX_SERVERS`."""
        by_server: dict[str, list[str]] = {}
        for storage in self.storages:
            for server in storage.servers[:1]:
                by_server.setdefault(server, []).append(storage.storage)
        return [(server, tuple(ids)) for server, ids in list(by_server.items())[:MAX_SERVERS]]


def disk_storages(disks: list[GuestDisk], configs: list[StorageConfig] | None) -> list[DiskStorage]:
    """The storages ``disks`` are on, in the order of their first disk, with their configuration when listed."""
    by_id = {c.storage: c for c in configs or []}
    keys: dict[str, list[str]] = {}
    for disk in disks:
        keys.setdefault(disk.storage, []).append(disk.key)
    return [DiskStorage(storage, tuple(k), by_id.get(storage)) for storage, k in keys.items()]


async def lookup(proxmox: ProxmoxClient, guest: Resource) -> GuestStorage | None:
    """The storages of ``guest``'s disks. A failed configuration read raises; a storage configuration the token
    may not read leaves the storages unexplained (``error``), never fails the look-up."""
    if guest.node is None or guest.vmid is None:
        return None
    # both at once: the storage listing is cached by the client, and nearly every guest has a disk
    config, listing = await asyncio.gather(
        proxmox.guest_config(guest.node, guest.vmid, guest.kind), proxmox.storages(), return_exceptions=True
    )
    if isinstance(config, BaseException):
        raise config
    if isinstance(listing, BaseException) and not isinstance(listing, SourceError):
        raise listing
    configs = None if isinstance(listing, BaseException) else listing
    disks = guest_disks(config.values, guest.kind)
    # a listing nobody needs (a guest without disks) is no loss
    error = listing if isinstance(listing, SourceError) and disks else None
    storages = disk_storages(disks, configs)
    unseen = tuple(s.storage for s in storages if s.config is None) if configs is not None else ()
    return GuestStorage(guest.node, guest.vmid, guest.kind, guest.label(), tuple(storages), unseen, error)
