"""The incident's neighbourhood: the places worth searching besides the alert's own target.

Many incidents start one hop away from what alerts: on the Proxmox node that hosts the guest (its kernel log, its
disks), on the storage server behind a network mount or behind the Proxmox storage of the guest's disks, on the
backup server behind a datastore, or on a host the user declared as a dependency in ``TOPOLOGY_FILE``.
:func:`resolve` finds those places from what the triage already knows (the guest look-up and its disks' storages,
the alert's labels, the mounts the target's node_exporter reports) and gives each a weight by distance, so evidence
found there counts a little less than evidence on the target and says where it came from ("on node atlas").
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from tools.prometheus import PrometheusClient
from tools.proxmox_models import split_instance
from tools.selectors import Matcher, regex_escape, selector
from triage.topology import Topology, host_names

Role = Literal["target", "node", "storage", "backup", "dependency"]

# evidence found one hop away counts this much of the same finding on the target
WEIGHTS: dict[Role, float] = {"target": 1.0, "node": 0.85, "storage": 0.85, "backup": 0.85, "dependency": 0.7}
PHRASES: dict[Role, str] = {
    "target": "",
    "node": "on node",
    "storage": "on storage server",
    "backup": "on backup server",
    "dependency": "on dependency",
}
MAX_PLACES = 6
MAX_STORAGE_PLACES = 2
MAX_MOUNTS = 50
NETWORK_FSTYPES = "nfs|nfs4|cifs|smb3|smbfs|fuse.sshfs|glusterfs|fuse.glusterfs|ceph|fuse.ceph|9p|davfs"
# ``server:/export`` (NFS, GlusterFS), ``//server/share`` (SMB), ``user@server:/path`` (sshfs)
_REMOTE_DEVICE = re.compile(r"^(?://(?P<smb>[^/\s]+)/|(?:[^@\s/]+@)?(?P<host>\[[0-9a-fA-F:]+\]|[^:/\s]+):/?)")


@dataclass(frozen=True)
class Place:
    """One place to search: its ``role``, a display ``name``, every ``names`` value labels may carry for it, and the
    ``weight`` of its evidence."""

    role: Role
    name: str
    names: tuple[str, ...]
    weight: float

    @property
    def where(self) -> str:
        """How a finding there is labelled ("on node atlas"; empty for the target)."""
        phrase = PHRASES[self.role]
        return f"{phrase} {self.name}" if phrase else ""

    def describe(self, title: str) -> str:
        """``title`` with where it was found appended (unchanged for the target)."""
        return f"{title} ({self.where})" if self.where else title


_BACKUP_WORDS = re.compile(r"(?i)(backup|vzdump|pbs|datastore|proxmox.?backup)")


def about_backups(alertname: str, labels: dict[str, str]) -> bool:
    """Whether an alert is about backups: its name, or a label naming a datastore or backup job."""
    return (
        bool(_BACKUP_WORDS.search(alertname))
        or any(_BACKUP_WORDS.search(k) for k in labels)
        or bool(labels.get("store"))
    )


def remote_server(device: str | None) -> str | None:
    """The server of a network filesystem device label (``nas01:/export/media``, ``//nas01/share``), else None."""
    if not device:
        return None
    match = _REMOTE_DEVICE.match(device.strip())
    if match is None:
        return None
    server = (match.group("smb") or match.group("host") or "").strip("[]")
    return server.lower() or None


def _place(role: Role, host: str, topology: Topology | None, extra: tuple[str, ...] = ()) -> Place:
    canonical = topology.resolve([host]) if topology is not None else None
    names = topology.names(canonical) if topology is not None and canonical else host_names(host)
    return Place(role, host, tuple(dict.fromkeys([*names, *extra])), WEIGHTS[role])


def _instance_matcher(names: tuple[str, ...]) -> Matcher:
    alternatives = "|".join(regex_escape(n) for n in names)
    return Matcher("instance", f"(?i)({alternatives})(:[0-9]+)?", "=~")


async def mount_servers(
    prometheus: PrometheusClient, target_names: tuple[str, ...], mountpoint: str | None
) -> list[str]:
    """Servers behind the network filesystems the target's node_exporter reports (the alert's mount first)."""
    if not target_names:
        return []
    matchers = [_instance_matcher(target_names), Matcher("fstype", NETWORK_FSTYPES, "=~")]
    rows = await prometheus.series([selector("node_filesystem_size_bytes", {}, matchers)], limit=MAX_MOUNTS)
    ordered = sorted(rows, key=lambda r: r.get("mountpoint") != mountpoint)
    return list(dict.fromkeys(s for s in (remote_server(r.get("device")) for r in ordered) if s))


async def _storage_servers(
    target_names: tuple[str, ...],
    device: str | None,
    disk_servers: list[tuple[str, tuple[str, ...]]],
    mounts: Callable[[tuple[str, ...]], Awaitable[list[str]]] | None,
) -> list[tuple[str, tuple[str, ...]]]:
    """The storage servers worth searching, each with the storage ids naming it: the server of the alert's own
    network mount, then those of the guest's disk storages, then those of the target's other network mounts (only
    looked up when the alert names no mount), at most :data:`MAX_STORAGE_PLACES`."""
    own = remote_server(device)
    found: dict[str, list[str]] = {own: []} if own else {}
    for server, ids in disk_servers:
        found.setdefault(server.lower(), []).extend(i.lower() for i in ids)
    if mounts is not None and target_names and own is None:
        for server in await mounts(target_names):
            found.setdefault(server, [])
    return [(server, tuple(dict.fromkeys(ids))) for server, ids in list(found.items())[:MAX_STORAGE_PLACES]]


async def resolve(
    target_names: list[str],
    *,
    node: str | None,
    device: str | None,
    mountpoint: str | None,
    backup_related: bool,
    disk_servers: list[tuple[str, tuple[str, ...]]] | None = None,
    backup_url: str | None,
    topology: Topology | None,
    mounts: Callable[[tuple[str, ...]], Awaitable[list[str]]] | None,
    backup_host: Callable[[], Awaitable[str | None]] | None = None,
) -> list[Place]:
    """The target and its neighbours, nearest first, at most :data:`MAX_PLACES`.

    ``node`` is the Proxmox node of the guest behind the alert; ``device``/``mountpoint`` the alert's own labels;
    ``disk_servers`` the servers of the network storages holding the guest's disks, each with its storage ids (a
    log line naming the storage then counts for the server);
    ``backup_related`` says the alert is about backups (its backup server, named by ``backup_url``, is then a
    neighbour);
    ``mounts`` looks up the servers behind the target's network mounts (None: no metrics source); ``backup_host``
    the backup server's host name.
    """
    canonical = topology.resolve(target_names) if topology is not None else None
    names = list(target_names)
    if canonical is not None and topology is not None:
        names += list(topology.names(canonical))
    expanded = tuple(dict.fromkeys(n for value in names for n in host_names(value)))
    display = canonical or (target_names[0] if target_names else "target")
    places = [Place("target", display, expanded, WEIGHTS["target"])]
    seen = set(expanded)

    def add(place: Place) -> None:
        if place.name.lower() in seen or len(places) >= MAX_PLACES:
            return
        seen.update(place.names)
        places.append(place)

    if node:
        add(_place("node", node, topology))
    for server, ids in await _storage_servers(expanded, device, disk_servers or [], mounts):
        add(_place("storage", server, topology, extra=ids))
    if backup_related and backup_url:
        host, _ = split_instance(urlsplit(backup_url).netloc.rsplit("@", 1)[-1])
        # the server's own name (what its logs carry) comes from its task ids; the URL may be an address or alias
        known = await backup_host() if backup_host is not None else None
        name = known or host
        if name:
            add(_place("backup", name, topology, extra=host_names(host) if host and known else ()))
    if topology is not None:
        for owner in [canonical, node]:
            for dependency in topology.depends_on(owner) if owner else ():
                add(_place("dependency", dependency, topology))
    return places


def upid_node(upid: str) -> str | None:
    """The host name a Proxmox task id carries (``UPID:pbs01:…``), unless it is ``localhost``."""
    parts = upid.split(":")
    if len(parts) < 3 or parts[0] != "UPID" or not parts[1] or parts[1] == "localhost":
        return None
    return parts[1]
