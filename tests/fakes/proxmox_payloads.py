"""Answer bodies of the fake Proxmox VE (the ``data`` members), built from the fake's world state."""

from __future__ import annotations

from typing import Any


def resource_rows(
    nodes: dict[str, dict[str, Any]],
    guests: dict[int, dict[str, Any]],
    kind: str | None,
    storages: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Rows of ``/cluster/resources`` for ``type=kind`` (all kinds when None); a storage has one row per node."""
    rows: list[dict[str, Any]] = []
    if kind in (None, "node"):
        for name, n in nodes.items():
            row: dict[str, Any] = {
                "id": f"node/{name}",
                "type": "node",
                "node": name,
                "status": "online" if n["online"] else "offline",
            }
            if n["online"]:
                row |= {
                    "cpu": n["cpu"],
                    "maxcpu": 16,
                    "mem": n["mem"],
                    "maxmem": n["maxmem"],
                    "uptime": n["uptime"],
                    "disk": 20 << 30,
                    "maxdisk": 100 << 30,
                    "level": "",
                    "cgroup-mode": 2,
                }
            rows.append(row)
    if kind in (None, "vm"):
        for g in guests.values():
            rows.append(
                {
                    "id": f"{g['kind']}/{g['vmid']}",
                    "type": g["kind"],
                    "node": g["node"],
                    "vmid": g["vmid"],
                    "name": g["name"],
                    "status": g["status"],
                    "cpu": 0.02,
                    "maxcpu": 2,
                    "mem": g["mem"],
                    "maxmem": g["maxmem"],
                    "disk": 0,
                    "maxdisk": 32 << 30,
                    "uptime": g["uptime"],
                    "template": int(g["template"]),
                    "tags": g["tags"],
                    "netin": 1000,
                    "netout": 2000,
                    "diskread": 0,
                    "diskwrite": 0,
                    **({"lock": g["lock"]} if g["lock"] else {}),
                }
            )
    if kind in (None, "storage"):
        for storage in (storages or {}).values():
            for name, n in nodes.items():
                if storage["nodes"] and name not in storage["nodes"]:
                    continue
                available = n["online"] and storage["active"]
                rows.append(
                    {
                        "id": f"storage/{name}/{storage['storage']}",
                        "type": "storage",
                        "node": name,
                        "storage": storage["storage"],
                        "status": "available" if available else "unknown",
                        "plugintype": storage["type"],
                        "content": storage["content"],
                        "shared": int(storage["shared"]),
                        **({"disk": storage["used"], "maxdisk": storage["total"]} if available else {}),
                    }
                )
    return rows


def node_status(n: dict[str, Any]) -> dict[str, Any]:
    """``/nodes/{node}/status`` of an online node."""
    return {
        "uptime": n["uptime"],
        "cpu": n["cpu"],
        "wait": n.get("wait", 0.001),
        "loadavg": [f"{x:.2f}" for x in n["loadavg"]],
        "memory": {"total": n["maxmem"], "used": n["mem"], "free": n["maxmem"] - n["mem"]},
        "swap": {"total": 8 << 30, "used": 0, "free": 8 << 30},
        "rootfs": {"total": 100 << 30, "used": 20 << 30, "avail": 80 << 30, "free": 80 << 30},
        "cpuinfo": {"cpus": 16, "sockets": 1, "cores": 8, "model": "AMD Ryzen 7 5800X"},
        "kversion": "Linux 6.8.8-2-pve #1 SMP PREEMPT_DYNAMIC",
        "pveversion": "pve-manager/8.2.4/faa83925c9641325",
    }


def agent_interfaces(guest: dict[str, Any]) -> dict[str, Any]:
    """``agent/network-get-interfaces`` of a VM: loopback plus eth0 with the guest's live addresses."""
    return {
        "result": [
            {
                "name": "lo",
                "hardware-address": "00:00:00:00:00:00",
                "ip-addresses": [{"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8}],
            },
            {
                "name": "eth0",
                "hardware-address": "bc:24:11:00:00:01",
                "ip-addresses": [
                    {
                        "ip-address": ip,
                        "ip-address-type": "ipv6" if ":" in ip else "ipv4",
                        "prefix": 64 if ":" in ip else 24,
                    }
                    for ip in guest["ips"]
                ],
            },
        ]
    }


def lxc_interfaces(guest: dict[str, Any]) -> list[dict[str, Any]]:
    """``interfaces`` of a running container: loopback plus eth0 with its first IPv4 and IPv6 address."""
    v4 = [ip for ip in guest["ips"] if ":" not in ip]
    v6 = [ip for ip in guest["ips"] if ":" in ip]
    eth0: dict[str, Any] = {"name": "eth0", "hwaddr": "bc:24:11:00:00:02"}
    if v4:
        eth0["inet"] = f"{v4[0]}/24"
    if v6:
        eth0["inet6"] = f"{v6[0]}/64"
    return [{"name": "lo", "hwaddr": "00:00:00:00:00:00", "inet": "127.0.0.1/8", "inet6": "::1/128"}, eth0]


def guest_status(guest: dict[str, Any]) -> dict[str, Any]:
    """``status/current`` of a guest."""
    status: dict[str, Any] = {
        "vmid": guest["vmid"],
        "name": guest["name"],
        "status": guest["status"],
        "uptime": guest["uptime"],
        "cpu": 0.02,
        "cpus": 2,
        "mem": guest["mem"],
        "maxmem": guest["maxmem"],
        "disk": 0,
        "maxdisk": 32 << 30,
        "netin": 1000,
        "netout": 2000,
        "diskread": 0,
        "diskwrite": 0,
        "ha": {"managed": 0},
    }
    if guest["kind"] == "qemu":
        qmpstatus = guest.get("qmpstatus") or guest["status"]
        status |= {"qmpstatus": qmpstatus, "agent": int(guest["agent"]), "pid": 4242}
    else:
        status["type"] = "lxc"
    if guest["lock"]:
        status["lock"] = guest["lock"]
    if guest["tags"]:
        status["tags"] = guest["tags"]
    return status


def pending_rows(guest: dict[str, Any]) -> list[dict[str, Any]]:
    """``/pending`` of a guest: every configuration key with its current ``value``, a ``pending`` one when a change
    waits for the next start, ``delete: 1`` when the key is to be removed (``config_with_pending_array``)."""
    rows: list[dict[str, Any]] = []
    conf = {k: v for k, v in guest["config"].items() if k != "digest"}
    for key in sorted(set(conf) | set(guest["pending"])):
        row: dict[str, Any] = {"key": key}
        if key in conf:
            row["value"] = conf[key]
        if key in guest["pending"]:
            row["pending"] = guest["pending"][key]
        if key in guest["pending_delete"]:
            row["delete"] = 1
        rows.append(row)
    return rows


def task_status(task: dict[str, Any]) -> dict[str, Any]:
    """``/nodes/{node}/tasks/{upid}/status``: ``running`` or ``stopped`` with its ``exitstatus``."""
    status = {k: task[k] for k in ("upid", "node", "pid", "pstart", "starttime", "type", "id", "user")}
    if "endtime" in task:
        return status | {"status": "stopped", "exitstatus": task["status"]}
    return status | {"status": "running"}


def task_log_page(lines: list[str], start: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """One page of a task log: ``{"n": line number from 1, "t": text}`` rows, and the number of lines."""
    rows = [{"n": n, "t": text} for n, text in enumerate(lines, start=1)]
    return rows[start : start + limit], len(rows)


def storage_config(storage: dict[str, Any]) -> dict[str, Any]:
    """A storage as ``/storage`` lists it: its configuration keys (``nodes`` comma-separated, ``shared`` 0/1)."""
    out: dict[str, Any] = {"storage": storage["storage"], "type": storage["type"], "content": storage["content"]}
    for key in (
        "server",
        "export",
        "share",
        "portal",
        "target",
        "monhost",
        "path",
        "pool",
        "vgname",
        "thinpool",
        "datastore",
        "namespace",
        "username",
        "fingerprint",
    ):
        if storage.get(key) is not None:
            out[key] = storage[key]
    if storage["nodes"]:
        out["nodes"] = ",".join(storage["nodes"])
    if storage.get("disable"):
        out["disable"] = 1
    if storage["shared"] or storage["type"] in ("nfs", "cifs", "pbs", "cephfs", "rbd"):
        out["shared"] = 1
    out["digest"] = "5b7c3f0d2e1a" + "0" * 28
    return out


def storage_status(storage: dict[str, Any]) -> dict[str, Any]:
    """``/nodes/{node}/storage/{id}/status`` (a row of ``/nodes/{node}/storage`` without its id): a disabled or
    inactive storage reports zero sizes and no ``used_fraction`` (``PVE::Storage::storage_info``)."""
    enabled = not storage.get("disable")
    active = bool(storage["active"]) and enabled
    status: dict[str, Any] = {
        "type": storage["type"],
        "content": storage["content"],
        "active": int(active),
        "enabled": int(enabled),
        "shared": int(bool(storage["shared"])),
        "total": 0,
        "used": 0,
        "avail": 0,
    }
    if active:
        status |= {"total": storage["total"], "used": storage["used"], "avail": storage["total"] - storage["used"]}
        if storage["total"]:
            status["used_fraction"] = storage["used"] / storage["total"]
    return status
