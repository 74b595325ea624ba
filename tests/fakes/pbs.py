"""A fake Proxmox Backup Server behind ``/api2/json``: datastores, backup groups and snapshots, and tasks.

Auth follows PBS: ``Authorization: PBSAPIToken=user@realm!tokenid:SECRET``. A header in another shape (say ``=``
before the secret, the PVE style) or a wrong secret is 401. Errors come back as PBS's REST server sends them: the
reason as the plain-text body (with a JSON content type), 400 for a bad parameter or an unknown datastore, 404 for
an unknown path::

    pbs = FakePbs()
    pbs.add_datastore("backup", total=4 << 40, used=3 << 40)
    pbs.add_snapshot("backup", "vm", "101", backup_time=1_714_550_000, size=12 << 30)
    pbs.add_task("backup", "backup:vm/101", starttime=1_714_550_000, endtime=1_714_551_000, status="OK")
    client = pbs.client()            # PbsClient on an httpx.MockTransport

Namespaces (``/admin/datastore/{store}/namespace``, the ``ns`` parameter of groups and snapshots) and a task's
``log`` and ``status`` (``/nodes/localhost/tasks/{upid}/…``) answer as proxmox-backup-proxy does. ``node_name`` is
the server's host name, the one its UPIDs carry (``pbs`` unless set).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

import httpx

from tests.fakes import json_response, raw_path
from tests.fakes.proxmox_api import PREFIX, FakeProxmoxApi, Rejection, page_tasks
from tests.fakes.proxmox_payloads import task_log_page
from tools.pbs import PbsClient

BASE_URL = "https://pbs.test:8007"
_TOKEN = re.compile(r"^PBSAPIToken=(?P<id>[^\s:!]+@[^\s:!]+![^\s:]+):(?P<secret>\S+)$")
_TASK_PARAMS = {
    "since",
    "until",
    "typefilter",
    "errors",
    "running",
    "limit",
    "start",
    "store",
    "userfilter",
    "statusfilter",
}


def _text(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, text=message, headers={"content-type": "application/json;charset=UTF-8"})


def _data(value: Any, **extra: Any) -> httpx.Response:
    return json_response(200, {"data": value, **extra})


class FakePbs(FakeProxmoxApi[PbsClient]):
    """PBS state: ``datastores`` by name (usage, ``snapshots``), ``tasks``."""

    default_fault_body = "service unavailable"
    base_url = BASE_URL
    client_class = PbsClient
    token_pattern = _TOKEN
    default_token_id = "triage@pbs!ro"
    default_token_secret = "7d2e4f10-pbs-secret"
    first_pid = 0x2000

    def __init__(self, *, token_id: str | None = None, token_secret: str | None = None, delay_s: float = 0.0) -> None:
        super().__init__(token_id=token_id, token_secret=token_secret, delay_s=delay_s)
        self.datastores: dict[str, dict[str, Any]] = {}
        self.node_name = "pbs"

    # -- world building -------------------------------------------------------------------------------------

    def add_datastore(
        self,
        name: str,
        *,
        total: int = 4 << 40,
        used: int = 1 << 40,
        error: str | None = None,
        namespaces: list[str] | None = None,
    ) -> dict[str, Any]:
        """Add a datastore with its usage in bytes (``error`` marks it unavailable, as PBS reports it) and the
        ``namespaces`` below its root (``"pve-b"``, ``"pve-b/offsite"``)."""
        store = {"name": name, "total": total, "used": used, "error": error, "snapshots": []}
        store["namespaces"] = list(namespaces or [])
        self.datastores[name] = store
        return store

    def add_snapshot(
        self,
        store: str,
        backup_type: str,
        backup_id: str,
        *,
        backup_time: int,
        size: int = 1 << 30,
        verify_state: str | None = "ok",
        protected: bool = False,
        ns: str = "",
    ) -> dict[str, Any]:
        """Add a snapshot of group ``backup_type/backup_id`` (``vm``/``ct``/``host``) to a datastore, in namespace
        ``ns`` (the root when empty)."""
        snap: dict[str, Any] = {
            "backup-type": backup_type,
            "backup-id": backup_id,
            "backup-time": backup_time,
            "size": size,
            "owner": "root@pam",
            "protected": protected,
            "comment": f"{backup_id}",
            "files": [
                {"filename": "index.json.blob", "size": 512, "crypt-mode": "none"},
                {"filename": "drive-scsi0.img.fidx", "size": size, "crypt-mode": "none"},
            ],
        }
        if verify_state is not None:
            snap["verification"] = {
                "state": verify_state,
                "upid": f"UPID:pbs:00000001:00000001:00000001:{backup_time:08X}:verificationjob:{store}:root@pam:",
            }
        self.datastores[store]["snapshots"].append((ns, snap))
        return snap

    def add_task(
        self,
        worker_type: str,
        worker_id: str | None,
        *,
        starttime: int,
        endtime: int | None = None,
        status: str | None = "OK",
        user: str = "root@pam",
        log: list[str] | None = None,
    ) -> dict[str, Any]:
        """Add a task (``backup``, ``verificationjob``, ``garbage_collection``, ``prune``, ``syncjob`` …).

        ``worker_id`` starts with the datastore (``backup:vm/101``, ``backup:ns/vm/101`` in a namespace) for
        datastore tasks. ``endtime=None`` leaves it running. ``log`` is its task log; an ended task's log closes
        as PBS closes it (``TASK OK`` or ``TASK ERROR: …``).
        """
        pid = self.next_pid()
        escaped = (worker_id or "").replace(":", "\\x3a").replace("/", "-")
        node = self.node_name
        upid = f"UPID:{node}:{pid:08X}:{pid * 5:08X}:00000001:{starttime:08X}:{worker_type}:{escaped}:{user}:"
        task: dict[str, Any] = {
            "upid": upid,
            "node": node,
            "pid": pid,
            "pstart": pid * 5,
            "starttime": starttime,
            "worker_type": worker_type,
            "worker_id": worker_id,
            "user": user,
        }
        if endtime is not None:
            task |= {"endtime": endtime, "status": status}
        lines = list(log or [])
        if endtime is not None:
            lines.append("TASK OK" if status == "OK" else f"TASK ERROR: {status}")
        task["log"] = lines
        self.tasks.append(task)
        return task

    # -- HTTP ----------------------------------------------------------------------------------------------

    def rejected(self, why: Rejection, request: httpx.Request) -> httpx.Response:
        """proxmox-backup-proxy's answers: plain-text reasons, 404 for a path or method it does not serve."""
        if why == "token-format":
            return _text(401, "authentication failed - invalid API token format")
        if why == "token-value":
            return _text(401, "authentication failed - invalid token")
        return _text(404, f"Path '{request.url.path}' not found.")

    def route(self, request: httpx.Request, path: str) -> httpx.Response:
        """Route one request like proxmox-backup-proxy."""
        if path == "/version":
            return _data({"version": "3.2", "release": "7", "repoid": "a1b2c3d4"})
        if path == "/status/datastore-usage":
            return _data([self._usage(s) for s in self.datastores.values()])
        if path == "/nodes/localhost/tasks":
            return self._tasks(request.url.params)
        task_match = re.fullmatch(r"/nodes/([^/]+)/tasks/([^/]+)/(log|status)", raw_path(request).removeprefix(PREFIX))
        if task_match and unquote(task_match.group(1)) in ("localhost", self.node_name):
            return self._task(unquote(task_match.group(2)), task_match.group(3), request.url.params)
        match = re.fullmatch(
            r"/admin/datastore/([^/]+)/(status|groups|snapshots|namespace)", raw_path(request).removeprefix(PREFIX)
        )
        if match:
            name = unquote(match.group(1))
            store = self.datastores.get(name)
            if store is None:
                return _text(400, f"no such datastore '{name}'")
            if match.group(2) == "status":
                return _data({"total": store["total"], "used": store["used"], "avail": store["total"] - store["used"]})
            if match.group(2) == "namespace":
                return _data([{"ns": ""}, *({"ns": ns} for ns in store["namespaces"])])
            ns = request.url.params.get("ns", "")
            if ns and ns not in store["namespaces"]:
                return _text(400, f"namespace '{ns}' does not exist")
            if match.group(2) == "groups":
                return _data(self._groups(store, ns))
            return self._snapshots(store, request.url.params)
        return _text(404, f"Path '{request.url.path}' not found.")

    def _usage(self, store: dict[str, Any]) -> dict[str, Any]:
        if store["error"]:
            return {"store": store["name"], "error": store["error"]}
        return {
            "store": store["name"],
            "total": store["total"],
            "used": store["used"],
            "avail": store["total"] - store["used"],
            "history-start": 1_714_000_000,
            "history-delta": 86400,
            "history": [store["used"] / store["total"]] * 3,
            "estimated-full-date": 1_720_000_000,
            "gc-status": {"upid": None, "index-file-count": 10, "disk-bytes": store["used"]},
        }

    def _groups(self, store: dict[str, Any], ns: str) -> list[dict[str, Any]]:
        groups: dict[tuple[str, str], dict[str, Any]] = {}
        for snap in _in_namespace(store, ns):
            key = (snap["backup-type"], snap["backup-id"])
            group = groups.setdefault(
                key,
                {
                    "backup-type": key[0],
                    "backup-id": key[1],
                    "last-backup": 0,
                    "backup-count": 0,
                    "owner": snap["owner"],
                    "files": [],
                },
            )
            group["backup-count"] += 1
            if snap["backup-time"] >= group["last-backup"]:
                group["last-backup"] = snap["backup-time"]
                group["files"] = [f["filename"] for f in snap["files"]]
        return list(groups.values())

    def _snapshots(self, store: dict[str, Any], params: httpx.QueryParams) -> httpx.Response:
        unknown = sorted(set(params.keys()) - {"backup-type", "backup-id", "ns"})
        if unknown:
            return _text(
                400, f"parameter verification failed - '{unknown[0]}': schema does not allow additional properties"
            )
        kind = params.get("backup-type")
        if kind is not None and kind not in ("vm", "ct", "host"):
            return _text(
                400, f"parameter verification failed - 'backup-type': value '{kind}' is not defined in the enumeration."
            )
        snaps = [
            s
            for s in _in_namespace(store, params.get("ns", ""))
            if (kind is None or s["backup-type"] == kind)
            and ("backup-id" not in params or s["backup-id"] == params["backup-id"])
        ]
        return _data(snaps)

    def _task(self, upid: str, what: str, params: httpx.QueryParams) -> httpx.Response:
        if not upid.startswith("UPID:"):
            return _text(400, f"parameter verification failed - 'upid': unable to parse UPID '{upid}'")
        task = next((t for t in self.tasks if t["upid"] == upid), None)
        if task is None:
            return _text(400, f"no such task '{upid}'")
        if what == "status":
            status = {k: task[k] for k in ("upid", "node", "pid", "pstart", "starttime", "worker_type", "user")}
            status["worker_id"] = task["worker_id"]
            if "endtime" in task:
                return _data(status | {"status": "stopped", "exitstatus": task["status"]})
            return _data(status | {"status": "running"})
        for key in ("start", "limit"):
            if key in params and not params[key].isdigit():
                return _text(400, f"parameter verification failed - '{key}': expected integer, got '{params[key]}'")
        page, total = task_log_page(task["log"], int(params.get("start", "0")), int(params.get("limit", "50")))
        return _data(page, total=total, active="endtime" not in task)

    def _tasks(self, params: httpx.QueryParams) -> httpx.Response:
        unknown = sorted(set(params.keys()) - _TASK_PARAMS)
        if unknown:
            return _text(
                400, f"parameter verification failed - '{unknown[0]}': schema does not allow additional properties"
            )
        for key in ("since", "until", "limit", "start"):
            if key in params and not params[key].isdigit():
                return _text(400, f"parameter verification failed - '{key}': expected integer, got '{params[key]}'")
        tasks = list(self.tasks)
        if "typefilter" in params:
            tasks = [t for t in tasks if params["typefilter"] in t["worker_type"]]
        if "store" in params:
            tasks = [t for t in tasks if _task_store(t) == params["store"]]
        if params.get("running") in ("1", "true"):
            tasks = [t for t in tasks if "endtime" not in t]
        page, total = page_tasks(tasks, params)
        return _data(page, total=total)


def _in_namespace(store: dict[str, Any], ns: str) -> list[dict[str, Any]]:
    """The snapshots of ``store`` stored in namespace ``ns`` (the root when empty)."""
    return [snap for where, snap in store["snapshots"] if where == ns]


def _task_store(task: dict[str, Any]) -> str:
    """The datastore a task works on: the first part of its worker id, the local (third) one for a sync job
    (``remote:remote-store:local-store[:ns]:job``)."""
    parts = (task["worker_id"] or "").split(":")
    if task["worker_type"] == "syncjob" and len(parts) >= 4:
        return parts[2]
    return parts[0]
