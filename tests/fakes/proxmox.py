"""A fake Proxmox VE cluster behind ``/api2/json``: nodes, guests (VMs and containers), their network, and tasks.

Auth follows PVE: ``Authorization: PVEAPIToken=user@realm!tokenid=SECRET``. A header in another shape (say ``:``
before the secret) is "401 No ticket"; a wrong token id or secret "401 invalid token value!". Errors come back the
way pve-api-daemon sends them: the reason in the HTTP status line and in ``message``, ``{"data": null}``; a bad
parameter is 400 with ``errors``; a missing guest is 500 "Configuration file … does not exist"; an unknown path 501::

    pve = FakeProxmox()
    pve.add_node("pve1")
    pve.add_guest(101, "jellyfin", node="pve1", kind="lxc", ips=["10.0.0.12"])
    pve.add_task("pve1", "vzdump", vmid=101, starttime=1_714_557_600, endtime=1_714_557_900,
                 log=["INFO: starting new backup job: vzdump 101 --storage pbs-main"])
    pve.add_storage("nas-nfs", "nfs", server="10.0.0.5", export="/volume1/pve", content="images,backup")
    client = pve.client()            # ProxmoxClient on an httpx.MockTransport

Besides the listings, a guest's ``config`` (pending changes applied unless ``current=1``) and ``pending``, a task's
``log`` and ``status`` (``/nodes/{node}/tasks/{upid}/…``), and the storage configuration (``/storage``, storage rows
of ``/cluster/resources``, ``/nodes/{node}/storage/{id}/status``) answer as pve-manager's API does.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import httpx

from tests.fakes import json_response, raw_path
from tests.fakes.proxmox_api import PREFIX, FakeProxmoxApi, Rejection, page_tasks
from tests.fakes.proxmox_payloads import (
    agent_interfaces,
    guest_status,
    lxc_interfaces,
    node_status,
    pending_rows,
    resource_rows,
    storage_config,
    storage_status,
    task_log_page,
    task_status,
)
from tools.proxmox import ProxmoxClient

BASE_URL = "https://pve.test:8006"
# tasks per node in /cluster/tasks: running ones plus the newest finished up to this many (PVE's MAX_FINISHED)
ACTIVE_TASKS = 25
_TOKEN = re.compile(r"^PVEAPIToken=(?P<id>[^\s=!]+@[^\s=!]+![^\s=]+)=(?P<secret>\S+)$")
_NODE_TASKS_PARAMS = {
    "since",
    "until",
    "vmid",
    "limit",
    "start",
    "typefilter",
    "errors",
    "source",
    "userfilter",
    "statusfilter",
}


def _error(status: int, reason: str, errors: dict[str, str] | None = None) -> httpx.Response:
    body: dict[str, Any] = {"data": None, "message": reason + "\n"}
    if errors:
        body["errors"] = errors
    return json_response(status, body, reason=reason)


def _data(value: Any) -> httpx.Response:
    return json_response(200, {"data": value})


class FakeProxmox(FakeProxmoxApi[ProxmoxClient]):
    """PVE state: ``nodes`` by name, ``guests`` by vmid (each with ``node``, ``kind``, ``config``), ``tasks``."""

    default_fault_body = '{"data":null}'
    base_url = BASE_URL
    client_class = ProxmoxClient
    token_pattern = _TOKEN
    default_token_id = "triage@pve!ro"
    default_token_secret = "5f1c0b9e-pve-secret"
    first_pid = 0x1000

    def __init__(self, *, token_id: str | None = None, token_secret: str | None = None, delay_s: float = 0.0) -> None:
        super().__init__(token_id=token_id, token_secret=token_secret, delay_s=delay_s)
        self.nodes: dict[str, dict[str, Any]] = {}
        self.guests: dict[int, dict[str, Any]] = {}
        self.storages: dict[str, dict[str, Any]] = {}
        # a token without Datastore.Audit sees no storage in /storage and /nodes/{node}/storage (PVE filters them)
        self.storage_audit = True

    # -- world building -------------------------------------------------------------------------------------

    def add_node(
        self,
        name: str,
        *,
        online: bool = True,
        cpu: float = 0.05,
        mem_used: int = 8 << 30,
        mem_total: int = 64 << 30,
        uptime: int = 864_000,
        loadavg: tuple[float, float, float] = (0.42, 0.38, 0.35),
        wait: float = 0.001,
    ) -> dict[str, Any]:
        """Add a cluster node (``online`` false makes it appear offline in ``/cluster/resources``); ``wait`` is the
        share of CPU time spent waiting for IO its status reports."""
        node = {
            "name": name,
            "online": online,
            "cpu": cpu,
            "mem": mem_used,
            "maxmem": mem_total,
            "uptime": uptime,
            "loadavg": loadavg,
            "wait": wait,
        }
        self.nodes[name] = node
        return node

    def add_guest(
        self,
        vmid: int,
        name: str,
        *,
        node: str,
        kind: str = "qemu",
        status: str = "running",
        ips: list[str] | None = None,
        static_ips: list[str] | None = None,
        agent: bool = True,
        mem: int = 2 << 30,
        maxmem: int = 4 << 30,
        uptime: int = 3600,
        template: bool = False,
        tags: str = "",
        lock: str | None = None,
        qmpstatus: str | None = None,
        config: dict[str, Any] | None = None,
        pending: dict[str, Any] | None = None,
        pending_delete: list[str] | None = None,
    ) -> dict[str, Any]:
        """Add a VM (``qemu``) or container (``lxc``).

        ``static_ips`` go into the config (``ipconfig0`` for VMs, ``net0`` for containers); ``ips`` are the live
        addresses the guest agent / container reports. ``agent=False`` makes the agent look not running.
        ``config`` overrides or adds configuration keys; ``pending`` and ``pending_delete`` are changes not applied
        yet (they take effect at the next start), as ``/pending`` lists them. ``qmpstatus`` is the QEMU run state a
        running VM reports (``io-error``, ``paused``; ``running`` when not given).
        """
        if node not in self.nodes:
            self.add_node(node)
        conf: dict[str, Any] = {"memory": maxmem >> 20, "cores": 2, "onboot": 1, "digest": "0" * 40}
        if kind == "qemu":
            conf |= {
                "name": name,
                "agent": "1" if agent else "0",
                "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1",
                "scsi0": f"local-lvm:vm-{vmid}-disk-0,size=32G",
            }
            for i, ip in enumerate(static_ips or []):
                conf[f"ipconfig{i}"] = f"ip={ip}/24,gw=10.0.0.1"
        else:
            conf |= {"hostname": name, "ostype": "debian", "rootfs": f"local-lvm:vm-{vmid}-disk-0,size=8G"}
            net = "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:00:02,type=veth"
            conf["net0"] = net + (f",ip={static_ips[0]}/24,gw=10.0.0.1" if static_ips else ",ip=dhcp")
        conf |= config or {}
        guest = {
            "vmid": vmid,
            "name": name,
            "node": node,
            "kind": kind,
            "status": status,
            "ips": list(ips or []),
            "agent": agent,
            "mem": mem,
            "maxmem": maxmem,
            "uptime": uptime if status == "running" else 0,
            "template": template,
            "tags": tags,
            "lock": lock,
            "qmpstatus": qmpstatus,
            "config": conf,
            "pending": dict(pending or {}),
            "pending_delete": list(pending_delete or []),
        }
        self.guests[vmid] = guest
        return guest

    def add_task(
        self,
        node: str,
        type: str,
        *,
        starttime: int,
        endtime: int | None = None,
        status: str | None = "OK",
        vmid: int | None = None,
        user: str = "root@pam",
        log: list[str] | None = None,
    ) -> dict[str, Any]:
        """Add a task; ``endtime=None`` leaves it running (no ``status``/``endtime`` in answers).

        ``log`` is its task log; a task that has ended closes it as PVE does (``TASK OK``, ``TASK ERROR: …``).
        """
        pid = self.next_pid()
        task_id = str(vmid) if vmid is not None else ""
        upid = f"UPID:{node}:{pid:08X}:{pid * 7:08X}:{starttime:08X}:{type}:{task_id}:{user}:"
        task: dict[str, Any] = {
            "upid": upid,
            "node": node,
            "pid": pid,
            "pstart": pid * 7,
            "starttime": starttime,
            "type": type,
            "id": task_id,
            "user": user,
        }
        if endtime is not None:
            task["endtime"] = endtime
            task["status"] = status
        lines = list(log or [])
        if endtime is not None:
            lines.append(_closing_line(status))
        task["log"] = lines
        self.tasks.append(task)
        return task

    def add_storage(self, name: str, type: str, **fields: Any) -> dict[str, Any]:
        """Add a storage to the datacenter configuration (``/storage``).

        ``fields`` are its configuration keys (``server``, ``export``, ``share``, ``portal``, ``monhost``,
        ``pool``, ``vgname``, ``thinpool``, ``datastore``, ``namespace``, ``path``, ``content``, ``nodes`` as a
        list, ``shared``, ``disable``) plus ``total``/``used`` bytes and ``active`` for its status on each node.
        """
        storage: dict[str, Any] = {"storage": name, "type": type, "content": "images,rootdir", "total": 1 << 40}
        storage |= {"used": 1 << 38, "active": True, "nodes": [], "shared": False, "disable": False}
        storage |= fields
        self.storages[name] = storage
        return storage

    # -- HTTP ----------------------------------------------------------------------------------------------

    def rejected(self, why: Rejection, request: httpx.Request) -> httpx.Response:
        """pve-api-daemon's answers: the reason in the status line, 501 for a path or method it does not serve."""
        if why == "token-format":
            return json_response(401, {"data": None}, reason="No ticket")
        if why == "token-value":
            return json_response(401, {"data": None}, reason="invalid token value!")
        path = request.url.path.removeprefix(PREFIX)
        return _error(501, f"Method '{request.method} {path}' not implemented")

    def route(self, request: httpx.Request, path: str) -> httpx.Response:
        """Route one request like pve-api-daemon."""
        parts = [unquote(p) for p in raw_path(request).removeprefix(PREFIX).strip("/").split("/")]
        params = request.url.params
        if path == "/version":
            return _data({"version": "8.2.4", "release": "8.2", "repoid": "faa83925c9641325"})
        if path == "/cluster/resources":
            return self._resources(params.get("type"))
        if path == "/cluster/tasks":
            return _data(self._cluster_tasks())
        if parts[0] == "storage" and len(parts) <= 2:
            return self._storage(parts[1] if len(parts) == 2 else None)
        if len(parts) >= 3 and parts[0] == "nodes":
            node = parts[1]
            if node not in self.nodes:
                return _error(
                    500,
                    f"hostname lookup '{node}' failed - failed to get address info for: {node}: "
                    "Name or service not known",
                )
            return self._node_route(node, parts[2:], path, params)
        return _error(501, f"Method 'GET {path}' not implemented")

    def _node_route(self, node: str, rest: list[str], path: str, params: httpx.QueryParams) -> httpx.Response:
        """Answer a path below ``/nodes/{node}`` of a known node."""
        if rest == ["status"]:
            return self._node_status(node)
        if rest == ["tasks"]:
            return self._node_tasks(node, params)
        if len(rest) == 3 and rest[0] == "tasks" and rest[2] in ("log", "status"):
            return self._task(node, rest[1], rest[2], params)
        if rest == ["storage"]:
            return _data(self._node_storages(node))
        if len(rest) == 3 and rest[0] == "storage" and rest[2] == "status":
            return self._storage_status(node, rest[1])
        if len(rest) >= 3 and rest[0] in ("qemu", "lxc"):
            return self._guest(node, rest[0], rest[1], rest[2:], path, params)
        return _error(501, f"Method 'GET {path}' not implemented")

    def _resources(self, kind: str | None) -> httpx.Response:
        if kind not in (None, "vm", "node", "storage", "sdn", "pool"):
            return _error(
                400,
                "Parameter verification failed.",
                {"type": f"value '{kind}' does not have a value in the enumeration 'vm, storage, node, sdn, pool'"},
            )
        return _data(resource_rows(self.nodes, self.guests, kind, self.storages))

    def _cluster_tasks(self) -> list[dict[str, Any]]:
        """What every node shares in the cluster file system's ``tasklist``: its running tasks, then its newest
        finished ones, ``ACTIVE_TASKS`` in all (``active_workers`` of PVE::RESTEnvironment); merged newest first."""
        shared: list[dict[str, Any]] = []
        for node in self.nodes:
            mine = sorted((t for t in self.tasks if t["node"] == node), key=lambda t: t["starttime"], reverse=True)
            running = [t for t in mine if "endtime" not in t]
            finished = [t for t in mine if "endtime" in t]
            shared += running + finished[: max(0, ACTIVE_TASKS - len(running))]
        return sorted(shared, key=lambda t: t["starttime"], reverse=True)

    def _node_status(self, node: str) -> httpx.Response:
        n = self.nodes[node]
        if not n["online"]:
            return _error(595, f"no route to host ({node})")
        return _data(node_status(n))

    def _guest(
        self, node: str, kind: str, raw_vmid: str, rest: list[str], path: str, params: httpx.QueryParams
    ) -> httpx.Response:
        if not raw_vmid.isdigit() or int(raw_vmid) < 100:
            return _error(
                400,
                "Parameter verification failed.",
                {"vmid": "invalid format - value does not look like a valid VM ID"},
            )
        vmid = int(raw_vmid)
        guest = self.guests.get(vmid)
        if guest is None or guest["node"] != node or guest["kind"] != kind:
            conf_dir = "qemu-server" if kind == "qemu" else "lxc"
            return _error(500, f"Configuration file 'nodes/{node}/{conf_dir}/{vmid}.conf' does not exist")
        if rest == ["status", "current"]:
            return _data(guest_status(guest))
        if rest == ["config"]:
            return _data(self._config(guest, current=params.get("current") in ("1", "true")))
        if rest == ["pending"]:
            return _data(pending_rows(guest))
        if kind == "qemu" and rest == ["agent", "network-get-interfaces"]:
            if guest["status"] != "running":
                return _error(500, f"VM {vmid} is not running")
            if not guest["agent"]:
                return _error(500, "QEMU guest agent is not running")
            return _data(agent_interfaces(guest))
        if kind == "lxc" and rest == ["interfaces"]:
            if guest["status"] != "running":
                return _error(500, f"CT {vmid} not running")
            return _data(lxc_interfaces(guest))
        return _error(501, f"Method 'GET {path}' not implemented")

    @staticmethod
    def _config(guest: dict[str, Any], *, current: bool) -> dict[str, Any]:
        """The configuration with pending changes applied (PVE's default), or as it runs now (``current=1``)."""
        conf = dict(guest["config"])
        if guest["lock"]:
            conf["lock"] = guest["lock"]
        if not current:
            conf |= guest["pending"]
            for key in guest["pending_delete"]:
                conf.pop(key, None)
        return conf

    def _task(self, node: str, upid: str, what: str, params: httpx.QueryParams) -> httpx.Response:
        task = next((t for t in self.tasks if t["upid"] == upid), None)
        if not upid.startswith("UPID:"):
            return _error(400, "Parameter verification failed.", {"upid": f"unable to parse worker upid '{upid}'"})
        if task is None or task["node"] != node:
            return _error(500, f"unable to open file '/var/log/pve/tasks/{upid}' - No such file or directory")
        if what == "status":
            return _data(task_status(task))
        problems = {
            k: "type check ('integer') failed - got '" + params[k] + "'"
            for k in ("start", "limit")
            if k in params and not params[k].isdigit()
        }
        if problems:
            return _error(400, "Parameter verification failed.", problems)
        page, total = task_log_page(task["log"], int(params.get("start", "0")), int(params.get("limit", "50")))
        return json_response(200, {"data": page, "total": total})

    def _node_storages(self, node: str) -> list[dict[str, Any]]:
        """``/nodes/{node}/storage``: the storages the node may use (``storage_info``), each with its status."""
        if not self.storage_audit:
            return []
        rows = []
        for storage in self.storages.values():
            if storage["nodes"] and node not in storage["nodes"]:
                continue
            rows.append({"storage": storage["storage"], **storage_status(storage)})
        return rows

    def _storage(self, name: str | None) -> httpx.Response:
        if name is None:
            visible = self.storages.values() if self.storage_audit else []
            return _data([storage_config(s) for s in visible])
        storage = self.storages.get(name)
        if storage is None:
            return _error(500, f"storage '{name}' does not exist")
        return _data(storage_config(storage))

    def _storage_status(self, node: str, name: str) -> httpx.Response:
        storage = self.storages.get(name)
        if storage is None or (storage["nodes"] and node not in storage["nodes"]):
            return _error(500, f"storage '{name}' does not exist")
        return _data(storage_status(storage))

    def _node_tasks(self, node: str, params: httpx.QueryParams) -> httpx.Response:
        unknown = sorted(set(params.keys()) - _NODE_TASKS_PARAMS)
        if unknown:
            return _error(
                400,
                "Parameter verification failed.",
                {
                    k: "property is not defined in schema and the schema does not allow additional properties"
                    for k in unknown
                },
            )
        problems = {
            k: "type check ('integer') failed - got '" + params[k] + "'"
            for k in ("since", "until", "vmid", "limit", "start")
            if k in params and not params[k].isdigit()
        }
        if problems:
            return _error(400, "Parameter verification failed.", problems)
        if params.get("source", "archive") not in ("archive", "active", "all"):
            return _error(
                400,
                "Parameter verification failed.",
                {"source": "value does not have a value in the enumeration 'archive, active, all'"},
            )
        source = params.get("source", "archive")
        tasks = [t for t in self.tasks if t["node"] == node]
        if source == "archive":
            tasks = [t for t in tasks if "endtime" in t]
        elif source == "active":
            tasks = [t for t in tasks if "endtime" not in t]
        if "vmid" in params:
            tasks = [t for t in tasks if t["id"] == params["vmid"]]
        if "typefilter" in params:
            tasks = [t for t in tasks if t["type"] == params["typefilter"]]
        page, total = page_tasks(tasks, params)
        return json_response(200, {"data": page, "total": total})


def _closing_line(status: str | None) -> str:
    """The last line PVE writes to an ended task's log: ``TASK OK``, ``TASK WARNINGS: n`` or ``TASK ERROR: …``."""
    if status == "OK":
        return "TASK OK"
    if status and status.startswith("WARNINGS"):
        return f"TASK {status}"
    return f"TASK ERROR: {status}"
