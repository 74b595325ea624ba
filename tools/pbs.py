"""Async client for Proxmox Backup Server (``/api2/json``, API token ``PBSAPIToken=user@realm!tokenid:SECRET``).

Read-only: datastores and their usage, backup groups and snapshots, and tasks (``backup``, ``verificationjob``,
``garbage_collection``, ``prune``, ``syncjob`` …) in a time window::

    async with PbsClient("https://pbs.lan:8007", token_id="triage@pbs!ro", token_secret=secret) as pbs:
        failed = await pbs.tasks(since_s=start, until_s=end, errors_only=True)
"""

from __future__ import annotations

from typing import Any, Unpack

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tools.errors import SourceMalformedResponse
from tools.http import ClientOptions
from tools.proxmox_api import ProxmoxApiClient, parse_list, parse_model, segment
from tools.proxmox_models import TaskBase

MAX_TASKS = 500
MAX_SNAPSHOTS = 1000


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class DatastoreUsage(_Model):
    """Usage of one datastore (bytes), from ``/status/datastore-usage`` or ``/admin/datastore/{store}/status``."""

    store: str
    total: int = 0
    used: int = 0
    avail: int = 0
    estimated_full_date: int | None = Field(None, alias="estimated-full-date")
    error: str | None = None
    gc_status: dict[str, Any] | None = Field(None, alias="gc-status")

    @property
    def used_ratio(self) -> float | None:
        """Used share of the datastore, None when its size is unknown (e.g. unavailable)."""
        return self.used / self.total if self.total else None


class BackupGroup(_Model):
    """A backup group: one guest or host (``backup-type`` ``vm``/``ct``/``host``, ``backup-id`` e.g. ``101``)."""

    backup_type: str = Field(alias="backup-type")
    backup_id: str = Field(alias="backup-id")
    last_backup: int | None = Field(None, alias="last-backup")
    backup_count: int = Field(0, alias="backup-count")
    owner: str | None = None
    comment: str | None = None


class Snapshot(_Model):
    """One backup snapshot: time, size, protection and the last verification state (``ok``/``failed``)."""

    backup_type: str = Field(alias="backup-type")
    backup_id: str = Field(alias="backup-id")
    backup_time: int = Field(alias="backup-time")
    size: int | None = None
    owner: str | None = None
    protected: bool = False
    comment: str | None = None
    verify_state: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _verification(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("verification"), dict):
            return {**data, "verify_state": data["verification"].get("state")}
        return data


class PbsTask(TaskBase):
    """A PBS task: ``worker_type`` (``backup``, ``garbage_collection`` …) and ``worker_id``."""

    node: str = "localhost"
    worker_type: str
    worker_id: str | None = None


class PbsClient(ProxmoxApiClient):
    """Proxmox Backup Server. ``token_id`` is ``user@realm!tokenid``; ``token_secret`` the token's secret."""

    source = "pbs"

    def __init__(
        self,
        base_url: str,
        *,
        token_id: str,
        token_secret: str,
        **options: Unpack[ClientOptions],
    ) -> None:
        super().__init__(base_url, auth_header=f"PBSAPIToken={token_id}:{token_secret}", secret=token_secret, **options)

    async def version(self) -> dict[str, str]:
        """``/version``: ``version``, ``release``, ``repoid`` — a cheap authenticated health probe."""
        data = await self.data("/version")
        return {str(k): str(v) for k, v in (data or {}).items()} if isinstance(data, dict) else {}

    async def datastores(self) -> list[DatastoreUsage]:
        """Every datastore with its usage (``/status/datastore-usage``)."""
        path = "/status/datastore-usage"
        return parse_list(DatastoreUsage, await self.data(path), source=self.source, url=self.display_url + path)

    async def datastore_status(self, store: str) -> DatastoreUsage:
        """Usage of one datastore (``/admin/datastore/{segment(store)}/status``)."""
        path = f"/admin/datastore/{segment(store)}/status"
        data = await self.data(path)
        body = {**data, "store": store} if isinstance(data, dict) else data
        return parse_model(DatastoreUsage, body, source=self.source, url=self.display_url + path)

    async def namespaces(self, store: str, *, max_depth: int = 7) -> list[str]:
        """Namespaces of a datastore (``""`` is the root), down to ``max_depth`` levels."""
        path = f"/admin/datastore/{segment(store)}/namespace"
        data = await self.data(path, params={"max-depth": max(0, min(max_depth, 7))})
        if not isinstance(data, list):
            raise SourceMalformedResponse(
                "namespace list is not a list", source=self.source, url=self.display_url + path
            )
        found = [str(row.get("ns", "")) for row in data if isinstance(row, dict)]
        return list(dict.fromkeys(["", *found]))

    async def groups(self, store: str, *, ns: str | None = None) -> list[BackupGroup]:
        """Backup groups of a datastore (of namespace ``ns``; PBS lists only the root without it) with their last
        backup time and snapshot count."""
        path = f"/admin/datastore/{segment(store)}/groups"
        data = await self.data(path, params={"ns": ns or None})
        return parse_list(BackupGroup, data, source=self.source, url=self.display_url + path)

    async def snapshots(
        self,
        store: str,
        *,
        backup_type: str | None = None,
        backup_id: str | None = None,
        ns: str | None = None,
        limit: int = 100,
    ) -> list[Snapshot]:
        """Snapshots of a datastore (of namespace ``ns``; the root without it), optionally of one group, newest
        first, at most ``limit``."""
        path = f"/admin/datastore/{segment(store)}/snapshots"
        params = {"backup-type": backup_type, "backup-id": backup_id, "ns": ns or None}
        snaps = parse_list(
            Snapshot, await self.data(path, params=params), source=self.source, url=self.display_url + path
        )
        snaps.sort(key=lambda s: s.backup_time, reverse=True)
        return snaps[: max(1, min(limit, MAX_SNAPSHOTS))]

    async def tasks(
        self,
        *,
        since_s: int,
        until_s: int | None = None,
        type_filter: str | None = None,
        store: str | None = None,
        errors_only: bool = False,
        limit: int = 50,
    ) -> list[PbsTask]:
        """Tasks that started in ``[since_s, until_s]`` (epoch seconds), newest first (finished and running)."""
        path = "/nodes/localhost/tasks"
        params: dict[str, Any] = {
            "since": since_s,
            "until": until_s,
            "typefilter": type_filter,
            "store": store,
            "errors": errors_only or None,
            "limit": max(1, min(limit, MAX_TASKS)),
        }
        tasks = parse_list(
            PbsTask, await self.data(path, params=params), source=self.source, url=self.display_url + path
        )
        return sorted(tasks, key=lambda t: t.starttime, reverse=True)
