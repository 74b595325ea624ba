"""Async client for the Proxmox VE API (``/api2/json``, API token ``PVEAPIToken=user@realm!tokenid=SECRET``).

Read-only: cluster resources, the guest behind an alert (by vmid, name or the IP/host in an ``instance`` label,
across every node), node status, guest status and config, and tasks in a time window::

    async with ProxmoxClient("https://pve.lan:8006", token_id="triage@pve!ro", token_secret=secret) as pve:
        match = await pve.find_guest("10.0.0.12:9100")
        if match:
            status = await pve.guest_status(match.guest.node, match.guest.vmid, match.guest.kind)

The cluster listing and task answers are kept for ``resources_ttl_s`` (a few seconds): the checks of one triage,
and the alerts of one storm, ask for them at nearly the same moment, and concurrent callers share one request.
Tasks of a window come from the one cluster-wide ``/cluster/tasks`` list where it reaches back far enough.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Unpack

from tools.errors import SourceError, SourceMalformedResponse
from tools.http import ClientOptions
from tools.numbers import is_ascii_digits
from tools.proxmox_api import ProxmoxApiClient, parse_list, parse_model, segment
from tools.proxmox_models import (
    GuestConfig,
    GuestKind,
    GuestMatch,
    GuestStatus,
    NodeStatus,
    PendingChange,
    Resource,
    Task,
    agent_addresses,
    host_names,
    lxc_addresses,
    split_instance,
)
from tools.proxmox_storage import StorageConfig, StorageStatus
from tools.ttl_cache import TtlCache

DEFAULT_MAX_LOOKUPS = 48
DEFAULT_IP_CACHE_TTL_S = 600.0
DEFAULT_RESOURCES_TTL_S = 10.0
LOOKUP_CONCURRENCY = 4
MAX_TASKS = 500
# Each node shares its running tasks and its newest finished ones, this many in all, in the cluster-wide task list
# (PVE::RESTEnvironment::active_workers, MAX_FINISHED): a shorter share is the node's whole recent history.
CLUSTER_TASKS_PER_NODE = 25


class ProxmoxClient(ProxmoxApiClient):
    """Proxmox VE. ``token_id`` is ``user@realm!tokenid``; ``token_secret`` the token's UUID secret.

    ``max_lookups`` bounds the per-guest requests (guest agent, container interfaces, config) one IP look-up may
    make, so an alert carrying an unknown address costs a bounded number of requests on a cluster of any size.
    Addresses learnt on the way are cached for ``ip_cache_ttl_s``. ``resources_ttl_s`` is how long the cluster
    listing and task answers are reused (0 turns that off).
    """

    source = "proxmox"

    def __init__(
        self,
        base_url: str,
        *,
        token_id: str,
        token_secret: str,
        max_lookups: int = DEFAULT_MAX_LOOKUPS,
        ip_cache_ttl_s: float = DEFAULT_IP_CACHE_TTL_S,
        resources_ttl_s: float = DEFAULT_RESOURCES_TTL_S,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(base_url, auth_header=f"PVEAPIToken={token_id}={token_secret}", secret=token_secret, **options)
        self.max_lookups = max(0, max_lookups)
        self.ip_cache_ttl_s = ip_cache_ttl_s
        # address -> (vmid, expiry on the monotonic clock): every look-up teaches all addresses of the guest it
        # asked, so alerts from the same hosts resolve without look-ups and a large cluster is covered over time
        self._ip_cache: dict[str, tuple[int, float]] = {}
        self._resources: TtlCache[str, list[Resource]] = TtlCache(resources_ttl_s)
        self._tasks: TtlCache[tuple[object, ...], list[Task]] = TtlCache(resources_ttl_s)
        self._storages: TtlCache[str, list[StorageConfig]] = TtlCache(resources_ttl_s)

    @property
    def resources_ttl_s(self) -> float:
        """How long the cluster listing and task answers are reused."""
        return self._resources.ttl_s

    async def version(self) -> dict[str, str]:
        """``/version``: ``version``, ``release``, ``repoid`` — a cheap authenticated health probe."""
        data = await self.data("/version")
        if not isinstance(data, dict):
            raise SourceMalformedResponse("version is not an object", source=self.source, url=self.display_url)
        return {str(k): str(v) for k, v in data.items()}

    async def resources(self, type: Literal["vm", "node", "storage"] | None = None) -> list[Resource]:
        """``/cluster/resources``, optionally only guests (``vm``), nodes or storages.

        One unfiltered listing serves every type, so guests and nodes cost one request per ``resources_ttl_s``.
        """
        rows = await self._resources.get("all", self._fetch_resources)
        if type is None:
            return list(rows)
        wanted = ("qemu", "lxc") if type == "vm" else (type,)
        return [r for r in rows if r.type in wanted]

    async def _fetch_resources(self) -> list[Resource]:
        path = "/cluster/resources"
        data = await self.data(path)
        return parse_list(Resource, data, source=self.source, url=self.display_url + path)

    async def guests(self) -> list[Resource]:
        """Every VM and container of the cluster, templates excluded."""
        return [r for r in await self.resources("vm") if r.is_guest and r.vmid is not None and not r.template]

    async def nodes(self) -> list[Resource]:
        """Every node of the cluster with its ``status`` (``online``/``offline``)."""
        return [r for r in await self.resources("node") if r.type == "node" and r.node]

    async def find_guest(self, query: str | int, *, max_lookups: int | None = None) -> GuestMatch | None:
        """Find the guest an alert is about, on any node.

        ``query`` is a vmid (``101``), a guest name, or an ``instance`` label (``10.0.0.12:9100``,
        ``jellyfin:9100``, ``jellyfin.lan``). Names match case-insensitively, also on the first DNS label. An IP is
        matched against running guests: the live addresses the QEMU guest agent or the container reports, else the
        static ``ipconfigN``/``netN`` addresses of the config — at most ``max_lookups`` requests in all, none when
        the address was seen in the last ``ip_cache_ttl_s``. ``max_lookups`` lowers that bound for one call (0: only
        vmids, names and cached addresses, i.e. nothing beyond the cluster listing).
        """
        guests = await self.guests()
        text = str(query).strip()
        if is_ascii_digits(text):
            for guest in guests:
                if guest.vmid == int(text):
                    return GuestMatch(guest=guest, matched_by="vmid")
            return None
        host, is_address = split_instance(text)
        if not is_address:
            names = host_names(host)
            # names need not be unique in PVE; a running guest is the one exporting metrics
            for guest in sorted(guests, key=lambda g: g.status != "running"):
                if guest.name and guest.name.lower() in names:
                    return GuestMatch(guest=guest, matched_by="name")
            return None
        limit = self.max_lookups if max_lookups is None else max(0, min(max_lookups, self.max_lookups))
        return await self._find_by_ip(host, guests, limit)

    async def _find_by_ip(self, address: str, guests: list[Resource], limit: int) -> GuestMatch | None:
        by_vmid = {g.vmid: g for g in guests}
        cached = self._ip_cache.get(address)
        if cached is not None and cached[1] > time.monotonic() and cached[0] in by_vmid:
            return GuestMatch(guest=by_vmid[cached[0]], matched_by="cached-ip")
        if limit <= 0:
            return None
        budget = _Budget(limit)

        async def check(guest: Resource) -> GuestMatch | None:
            found = await self._guest_ips(guest, budget)
            if found is None:
                return None
            addresses, matched_by = found
            expires = time.monotonic() + self.ip_cache_ttl_s
            for ip in addresses:
                self._ip_cache[ip] = (_vmid(guest), expires)
            if address in addresses:
                return GuestMatch(guest=guest, matched_by=matched_by, lookups=budget.used)
            return None

        return await _first(check, [g for g in guests if g.status == "running"])

    async def _guest_ips(self, guest: Resource, budget: _Budget) -> tuple[list[str], str] | None:
        """The guest's addresses in one request when it can answer live (container, running guest agent), else
        the static addresses of its config (cloud-init ``ipconfigN``, container ``netN``)."""
        node, vmid = _node(guest), _vmid(guest)
        live = await budget.call(lambda: self.guest_addresses(node, vmid, guest.kind))
        if live:
            return live, "live-ip"
        config = await budget.call(lambda: self.guest_config(node, vmid, guest.kind))
        return (config.ips, "config-ip") if config is not None else None

    async def guest_addresses(self, node: str, vmid: int, kind: GuestKind) -> list[str]:
        """Live addresses of a running guest: the QEMU guest agent's interfaces, or the container's."""
        if kind == "qemu":
            data = await self.data(f"/nodes/{segment(node)}/qemu/{vmid}/agent/network-get-interfaces")
            return agent_addresses(data)
        return lxc_addresses(await self.data(f"/nodes/{segment(node)}/lxc/{vmid}/interfaces"))

    async def node_status(self, node: str) -> NodeStatus:
        """``/nodes/{node}/status``: uptime, CPU, load average, memory and root filesystem use."""
        path = f"/nodes/{segment(node)}/status"
        return parse_model(NodeStatus, await self.data(path), source=self.source, url=self.display_url + path)

    async def guest_status(self, node: str, vmid: int, kind: GuestKind) -> GuestStatus:
        """``status/current`` of a VM (``qemu``) or container (``lxc``): state, uptime, memory, lock, HA state."""
        path = f"/nodes/{segment(node)}/{kind}/{vmid}/status/current"
        return parse_model(GuestStatus, await self.data(path), source=self.source, url=self.display_url + path)

    async def guest_config(self, node: str, vmid: int, kind: GuestKind) -> GuestConfig:
        """The guest's current configuration (every key as text; ``ips``, ``name``, ``memory_mb`` parsed)."""
        path = f"/nodes/{segment(node)}/{kind}/{vmid}/config"
        data = await self.data(path)
        if not isinstance(data, dict):
            raise SourceMalformedResponse("config is not an object", source=self.source, url=self.display_url + path)
        return GuestConfig(values={str(k): str(v) for k, v in data.items()})

    async def guest_pending(self, node: str, vmid: int, kind: GuestKind) -> list[PendingChange]:
        """Configuration changes written but not applied yet (``/pending``): they take effect at the next start."""
        path = f"/nodes/{segment(node)}/{kind}/{vmid}/pending"
        rows = parse_list(PendingChange, await self.data(path), source=self.source, url=self.display_url + path)
        return [row for row in rows if row.changed]

    async def storages(self) -> list[StorageConfig]:
        """The datacenter's storage configuration (``/storage``): type, server, export, pool … of each storage.

        PVE lists only the storages the token may audit (``Datastore.Audit`` or ``Datastore.AllocateSpace`` on
        ``/storage/{id}``); others are missing from the answer. Reused for ``resources_ttl_s``.
        """

        async def fetch() -> list[StorageConfig]:
            path = "/storage"
            return parse_list(StorageConfig, await self.data(path), source=self.source, url=self.display_url + path)

        return list(await self._storages.get("all", fetch))

    async def node_storage(self, node: str) -> list[StorageStatus]:
        """``/nodes/{node}/storage``: every storage the node may use, with ``active``/``enabled`` and its size."""
        path = f"/nodes/{segment(node)}/storage"
        return parse_list(StorageStatus, await self.data(path), source=self.source, url=self.display_url + path)

    async def node_tasks(
        self,
        node: str,
        *,
        since_s: int,
        until_s: int | None = None,
        vmid: int | None = None,
        type_filter: str | None = None,
        errors_only: bool = False,
        limit: int = 50,
    ) -> list[Task]:
        """Tasks of one node that started in ``[since_s, until_s]`` (epoch seconds), running ones included."""
        path = f"/nodes/{segment(node)}/tasks"
        params: dict[str, Any] = {
            "since": since_s,
            "until": until_s,
            "vmid": vmid,
            "typefilter": type_filter,
            "errors": errors_only or None,
            "limit": max(1, min(limit, MAX_TASKS)),
            # The default source is the archive only; "all" adds the tasks still running.
            "source": "all",
        }
        data = await self.data(path, params=params)
        return parse_list(Task, data, source=self.source, url=self.display_url + path)

    async def cluster_tasks(
        self, *, since_s: int, until_s: int | None = None, vmid: int | None = None, limit: int = 50
    ) -> list[Task]:
        """Recent tasks of the whole cluster (``/cluster/tasks``), filtered to the window, newest first.

        PVE keeps only the latest tasks per node in this list; for older windows use :meth:`tasks`.
        """
        tasks = await self._recent_tasks()
        return _window(tasks, since_s, until_s, vmid)[: max(1, min(limit, MAX_TASKS))]

    async def _recent_tasks(self) -> list[Task]:
        async def fetch() -> list[Task]:
            path = "/cluster/tasks"
            return parse_list(Task, await self.data(path), source=self.source, url=self.display_url + path)

        return await self._tasks.get(("cluster",), fetch)

    async def tasks(
        self,
        *,
        since_s: int,
        until_s: int | None = None,
        vmid: int | None = None,
        errors_only: bool = False,
        limit: int = 50,
    ) -> list[Task]:
        """Tasks of every node in the window, merged newest first, running ones included.

        One ``/cluster/tasks`` request answers for every node whose share of that list is complete for the window:
        PVE lists each node's running and newest finished tasks, ``CLUSTER_TASKS_PER_NODE`` in all, so a share that
        is shorter holds all of them, and a full one reaches back to its oldest task. An online node whose full share
        starts after ``since_s`` is asked directly with ``/nodes/{node}/tasks``. The same query within
        ``resources_ttl_s`` is answered from the first.
        """
        key = ("window", since_s, until_s, vmid, errors_only, limit)
        merged = await self._tasks.get(
            key, lambda: self._window_tasks(since_s, until_s, vmid=vmid, errors_only=errors_only, limit=limit)
        )
        return list(merged)

    async def _window_tasks(
        self, since_s: int, until_s: int | None, *, vmid: int | None, errors_only: bool, limit: int
    ) -> list[Task]:
        nodes, recent = await asyncio.gather(self.nodes(), self._recent_tasks())
        short = _short_shares(recent, since_s) & {n.node for n in nodes if n.node and n.status == "online"}
        per_node = await asyncio.gather(
            *(
                self.node_tasks(node, since_s=since_s, until_s=until_s, vmid=vmid, errors_only=errors_only, limit=limit)
                for node in sorted(short)
            )
        )
        # as the per-node "errors" filter: anything that did not end with plain "OK"
        covered = [
            t for t in recent if t.node not in short and not (errors_only and (t.status is None or t.status == "OK"))
        ]
        merged = covered + [task for tasks in per_node for task in tasks]
        return _window(merged, since_s, until_s, vmid)[: max(1, min(limit, MAX_TASKS))]


class _Budget:
    """Counts look-up requests; a failed look-up (agent not running, guest gone) spends budget, never raises."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    async def call(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        if self.used >= self.limit:
            return None
        self.used += 1
        try:
            return await fn()
        except SourceError:
            return None


async def _first(
    check: Callable[[Resource], Awaitable[GuestMatch | None]], guests: list[Resource]
) -> GuestMatch | None:
    """Run ``check`` over ``guests`` a few at a time and stop at the first match."""
    for start in range(0, len(guests), LOOKUP_CONCURRENCY):
        batch = guests[start : start + LOOKUP_CONCURRENCY]
        for match in await asyncio.gather(*(check(g) for g in batch)):
            if match is not None:
                return match
    return None


def _short_shares(recent: list[Task], since_s: int) -> set[str]:
    """Nodes whose share of ``/cluster/tasks`` may have dropped tasks that started after ``since_s``."""
    oldest: dict[str, int] = {}
    count: dict[str, int] = {}
    for task in recent:
        oldest[task.node] = min(oldest.get(task.node, task.starttime), task.starttime)
        count[task.node] = count.get(task.node, 0) + 1
    return {node for node, n in count.items() if n >= CLUSTER_TASKS_PER_NODE and oldest[node] > since_s}


def _window(tasks: list[Task], since_s: int, until_s: int | None, vmid: int | None) -> list[Task]:
    def inside(task: Task) -> bool:
        # A task overlaps the window when it started before its end and had not ended before its start.
        started_in_time = until_s is None or task.starttime <= until_s
        still_relevant = task.endtime is None or task.endtime >= since_s
        return started_in_time and still_relevant and (vmid is None or task.vmid == vmid)

    return sorted((t for t in tasks if inside(t)), key=lambda t: t.starttime, reverse=True)


def _node(guest: Resource) -> str:
    return guest.node or ""


def _vmid(guest: Resource) -> int:
    return guest.vmid or 0
