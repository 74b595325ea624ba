"""Typed answers of the Proxmox VE API (the members of ``{"data": …}`` the triage reads), and the parsing of
guest network configuration and ``instance`` labels used to find the guest behind an alert.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tools.numbers import ascii_int

GuestKind = Literal["qemu", "lxc"]

_NET_KEY = re.compile(r"^(ipconfig|net)\d+$")
_IP_FIELD = re.compile(r"(?:^|,)ip6?=([^,]+)")
_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9_-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9_-]*[a-z0-9])?)*$", re.IGNORECASE)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class Resource(_Model):
    """One row of ``/cluster/resources``: a guest (``qemu``/``lxc``), a ``node`` or a ``storage``."""

    id: str
    type: str
    node: str | None = None
    vmid: int | None = None
    name: str | None = None
    status: str | None = None
    cpu: float | None = None
    maxcpu: float | None = None
    mem: int | None = None
    maxmem: int | None = None
    disk: int | None = None
    maxdisk: int | None = None
    uptime: int | None = None
    template: bool = False
    tags: str | None = None
    hastate: str | None = None
    lock: str | None = None

    @property
    def is_guest(self) -> bool:
        """A VM or a container (not a node or storage)."""
        return self.type in ("qemu", "lxc")

    @property
    def kind(self) -> GuestKind:
        """``qemu`` or ``lxc``; only meaningful for guests."""
        return "lxc" if self.type == "lxc" else "qemu"

    def label(self, name: str | None = None) -> str:
        """``VM 460 (docspell)`` or ``LXC 461 (solr)``; ``name`` when a fresher one is known."""
        kind = "LXC" if self.kind == "lxc" else "VM"
        return f"{kind} {self.vmid} ({name or self.name or '?'})"

    @property
    def tag_list(self) -> list[str]:
        """The guest's tags (PVE separates them with ``;``)."""
        return [t for t in re.split(r"[;, ]", self.tags or "") if t]


class NodeStatus(_Model):
    """``/nodes/{node}/status``: load, memory and root filesystem of one node."""

    uptime: int = 0
    cpu: float = 0.0
    wait: float | None = None
    loadavg: list[float] = Field(default_factory=list)
    memory_total: int = 0
    memory_used: int = 0
    rootfs_total: int = 0
    rootfs_used: int = 0
    cpus: int | None = None
    kversion: str | None = None
    pveversion: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        memory = data.get("memory") or {}
        rootfs = data.get("rootfs") or {}
        cpuinfo = data.get("cpuinfo") or {}
        return {
            **data,
            "memory_total": memory.get("total", 0),
            "memory_used": memory.get("used", 0),
            "rootfs_total": rootfs.get("total", 0),
            "rootfs_used": rootfs.get("used", 0),
            "cpus": cpuinfo.get("cpus"),
        }

    @property
    def memory_ratio(self) -> float | None:
        """Used share of the node's memory, None when the total is unknown."""
        return self.memory_used / self.memory_total if self.memory_total else None


class GuestStatus(_Model):
    """``/nodes/{node}/{qemu|lxc}/{vmid}/status/current``."""

    vmid: int
    status: str
    name: str | None = None
    uptime: int = 0
    cpu: float = 0.0
    cpus: float | None = None
    mem: int = 0
    maxmem: int = 0
    disk: int = 0
    maxdisk: int = 0
    qmpstatus: str | None = None
    lock: str | None = None
    ha_state: str | None = None
    tags: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _ha(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("ha"), dict):
            return {**data, "ha_state": data["ha"].get("state")}
        return data

    @property
    def memory_ratio(self) -> float | None:
        """Used share of the guest's memory limit, None when no limit is reported."""
        return self.mem / self.maxmem if self.maxmem else None


class GuestConfig(_Model):
    """``/nodes/{node}/{qemu|lxc}/{vmid}/config``: every key as text, plus the parsed bits the triage uses."""

    values: dict[str, str]

    @property
    def name(self) -> str | None:
        """``name`` of a VM or ``hostname`` of a container."""
        return self.values.get("name") or self.values.get("hostname")

    @property
    def memory_mb(self) -> int | None:
        """The configured memory in MiB."""
        raw = self.values.get("memory")
        return ascii_int(raw) if raw else None

    @property
    def ips(self) -> list[str]:
        """Static addresses from ``ipconfigN`` (cloud-init VMs) and ``netN`` (containers) ``ip=``/``ip6=`` fields."""
        found: list[str] = []
        for key, value in self.values.items():
            if not _NET_KEY.match(key):
                continue
            for raw in _IP_FIELD.findall(value):
                address = raw.split("/", 1)[0]
                if is_ip(address):
                    found.append(address)
        return found


class PendingChange(_Model):
    """One row of ``/nodes/{node}/{qemu|lxc}/{vmid}/pending``: a key's running ``value``, and its ``pending`` value or
    ``delete`` (1: to be deleted) when a change waits for the guest's next start."""

    key: str
    value: str | int | float | None = None
    pending: str | int | float | None = None
    delete: int | None = None

    @property
    def changed(self) -> bool:
        return self.pending is not None or bool(self.delete)

    def describe(self) -> str:
        """``memory 4096 → 2048``, ``net1 deleted``."""
        if self.delete:
            return f"{self.key} deleted"
        before = "unset" if self.value is None else str(self.value)
        return f"{self.key} {before[:60]} → {str(self.pending)[:60]}"


class TaskBase(_Model):
    """What a PVE and a PBS task share: UPID, user, start and end (epoch seconds), status ``OK`` or error text.

    ``status`` and ``endtime`` are absent while the task runs.
    """

    upid: str
    user: str = ""
    starttime: int
    endtime: int | None = None
    status: str | None = None

    @property
    def running(self) -> bool:
        """Still running: Proxmox reports no end time yet."""
        return self.endtime is None

    @property
    def failed(self) -> bool:
        """Ended with an error (``WARNINGS: n`` counts as success, as the Proxmox task lists show it)."""
        return self.status is not None and self.status != "OK" and not self.status.startswith("WARNINGS")


class Task(TaskBase):
    """A PVE task: type (``vzdump``, ``qmstart``, ``qmreboot``, ``vzmigrate`` …), its node and object ``id``."""

    node: str
    type: str
    id: str = ""

    @property
    def vmid(self) -> int | None:
        """The guest the task worked on, when its ``id`` is a vmid."""
        return ascii_int(self.id)


class GuestMatch(_Model):
    """The guest behind an alert and how it was recognised: ``vmid``, ``name``, ``live-ip``,
    ``config-ip`` or ``cached-ip``."""

    guest: Resource
    matched_by: str
    lookups: int = 0


def is_ip(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address (no port, no brackets)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def split_instance(instance: str) -> tuple[str, bool]:
    """``10.0.0.12:9100`` → (``10.0.0.12``, True); ``jellyfin.lan:9100`` → (``jellyfin.lan``, False).

    Brackets and ports are removed; a bare IPv6 address stays whole. The flag says whether the host is an IP.
    """
    host = instance.strip()
    if "://" in host:
        host = host.split("://", 1)[1]
    host = host.split("/", 1)[0]
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host, is_ip(host)


def host_names(host: str) -> set[str]:
    """Names a guest may carry for a host-like label: the full name and its first DNS label, lower-case."""
    lowered = host.lower().rstrip(".")
    if not lowered or not _HOSTNAME.match(lowered):
        return set()
    return {lowered, lowered.split(".", 1)[0]}


def agent_addresses(data: Any) -> list[str]:
    """Addresses from ``agent/network-get-interfaces`` (``{"result": [{"ip-addresses": [...]}]}``), no loopback."""
    result = data.get("result") if isinstance(data, dict) else data
    found: list[str] = []
    for iface in result or []:
        if not isinstance(iface, dict) or iface.get("name") == "lo":
            continue
        for entry in iface.get("ip-addresses") or []:
            address = str(entry.get("ip-address", "")) if isinstance(entry, dict) else ""
            if is_ip(address) and not ipaddress.ip_address(address).is_loopback:
                found.append(address)
    return found


def lxc_addresses(data: Any) -> list[str]:
    """Addresses from an LXC's ``interfaces`` (``[{"name", "hwaddr", "inet": "10.0.0.5/24", "inet6"}]``)."""
    found: list[str] = []
    for iface in data or []:
        if not isinstance(iface, dict) or iface.get("name") == "lo":
            continue
        for key in ("inet", "inet6"):
            for raw in str(iface.get(key) or "").split():
                address = raw.split("/", 1)[0]
                if is_ip(address) and not ipaddress.ip_address(address).is_loopback:
                    found.append(address)
    return found
