"""Read-only LangChain tools over Proxmox VE and Proxmox Backup Server (see :func:`tools.langchain_tools.build_tools`)."""

from __future__ import annotations

from typing import Literal

from langchain_core.tools import BaseTool
from pydantic import Field

from tools.errors import SourceError
from tools.langchain_base import Clock, ToolArgs, WindowArgs, make_tool
from tools.pbs import PbsClient
from tools.proxmox import ProxmoxClient
from tools.render import clip, duration, fit, percent, size, when

PbsTaskType = Literal["backup", "verificationjob", "verify", "garbage_collection", "prune", "prunejob", "syncjob"]


class GuestArgs(ToolArgs):
    """Arguments of proxmox_guest_status."""

    guest: str = Field(
        min_length=1,
        max_length=300,
        description="The guest: a vmid (101), a name (jellyfin) or an alert's instance label "
        "(10.0.0.12:9100, jellyfin:9100, jellyfin.lan).",
    )


class PveTaskArgs(WindowArgs):
    """Arguments of proxmox_tasks."""

    lookback_minutes: int = Field(1440, ge=1, le=7 * 24 * 60, description="How far back from `end`, in minutes.")
    guest: str | None = Field(None, max_length=300, description="Only tasks of this guest (vmid, name or instance).")
    errors_only: bool = Field(False, description="Only tasks that ended with an error.")
    limit: int = Field(30, ge=1, le=200, description="Most tasks to return (newest first).")


class NoArgs(ToolArgs):
    """Tools that take no arguments."""


class PbsTaskArgs(WindowArgs):
    """Arguments of pbs_tasks."""

    lookback_minutes: int = Field(1440, ge=1, le=7 * 24 * 60, description="How far back from `end`, in minutes.")
    type_filter: PbsTaskType | None = Field(None, description="Only tasks of this worker type.")
    errors_only: bool = Field(False, description="Only tasks that ended with an error.")
    limit: int = Field(30, ge=1, le=200, description="Most tasks to return (newest first).")


class SnapshotArgs(ToolArgs):
    """Arguments of pbs_snapshots."""

    store: str = Field(min_length=1, max_length=100, description="Datastore name (see pbs_datastores).")
    backup_type: Literal["vm", "ct", "host"] | None = Field(None, description="Only this kind of backup group.")
    backup_id: str | None = Field(None, max_length=100, description="Only this group, e.g. the vmid `101`.")
    ns: str | None = Field(
        None, max_length=255, description="Namespace, e.g. `prod/db` (PBS lists only the root namespace without it)."
    )
    limit: int = Field(20, ge=1, le=200, description="Most snapshots to return (newest first).")


def _status(status: str | None) -> str:
    return "running" if status is None else clip(status, 200)


def proxmox_tools(client: ProxmoxClient, *, budget: int, clock: Clock) -> list[BaseTool]:
    """``proxmox_guest_status``, ``proxmox_tasks``, ``proxmox_nodes`` (all read-only)."""

    async def guest_status(args: GuestArgs) -> str:
        match = await client.find_guest(args.guest)
        if match is None:
            return f"proxmox: no VM or container matches {clip(args.guest, 100)!r} (tried vmid, name and IP address)"
        guest = match.guest
        node = guest.node or ""
        vmid = guest.vmid or 0
        status = await client.guest_status(node, vmid, guest.kind)
        lines = [
            f"state {status.status}"
            + (f" (qmp {status.qmpstatus})" if status.qmpstatus else "")
            + f", uptime {duration(status.uptime)}, cpu {percent(status.cpu)} of {status.cpus or '-'} cores",
            f"memory {size(status.mem)} of {size(status.maxmem)} ({percent(status.memory_ratio)})",
        ]
        if status.lock:
            lines.append(f"locked: {status.lock}")
        if status.ha_state:
            lines.append(f"HA state: {status.ha_state}")
        if guest.tags:
            lines.append(f"tags: {clip(guest.tags, 200)}")
        try:
            node_status = await client.node_status(node)
        except SourceError as exc:
            lines.append(f"node {node}: status unavailable ({clip(str(exc), 200)})")
        else:
            load = "/".join(f"{x:.2f}" for x in node_status.loadavg)
            lines.append(
                f"node {node}: uptime {duration(node_status.uptime)}, cpu {percent(node_status.cpu)}, load {load}, "
                f"memory {percent(node_status.memory_ratio)} of {size(node_status.memory_total)}"
            )
        header = (
            f"guest {vmid} {clip(guest.name or '', 100)} ({guest.kind}) on node {node}, matched by {match.matched_by}"
        )
        return fit(header, lines, budget_chars=budget, narrow="ask about one guest at a time")

    async def tasks(args: PveTaskArgs) -> str:
        since, until = args.window_s(clock)
        vmid: int | None = None
        if args.guest:
            match = await client.find_guest(args.guest)
            if match is None:
                return f"proxmox: no VM or container matches {clip(args.guest, 100)!r}"
            vmid = match.guest.vmid
        found = await client.tasks(
            since_s=since, until_s=until, vmid=vmid, errors_only=args.errors_only, limit=args.limit
        )
        lines = [
            f"{when(t.starttime)} {t.type} {('vmid ' + t.id) if t.id else ''} node={t.node} user={t.user} "
            f"{_status(t.status)}" + (f" took {duration(t.endtime - t.starttime)}" if t.endtime else "")
            for t in found
        ]
        header = f"proxmox tasks: {len(found)}, {when(since)} to {when(until)}" + (f", vmid {vmid}" if vmid else "")
        return fit(
            header, lines, budget_chars=budget, narrow="pass a guest, errors_only=true or a shorter lookback_minutes"
        )

    async def nodes(args: NoArgs) -> str:
        found = await client.nodes()
        lines = [
            f"{n.node} {n.status} cpu {percent(n.cpu)} memory {size(n.mem)} of {size(n.maxmem)} uptime {duration(n.uptime)}"
            if n.status == "online"
            else f"{n.node} {n.status}"
            for n in found
        ]
        return fit(f"proxmox nodes: {len(found)}", lines, budget_chars=budget, narrow="")

    return [
        make_tool(
            "proxmox_guest_status",
            "Find a Proxmox VE VM or container by vmid, name or instance label (IP:port, host:port) on any node and "
            "show its state, uptime, CPU, memory against its limit, lock and the health of its node. Read-only.",
            GuestArgs,
            guest_status,
        ),
        make_tool(
            "proxmox_tasks",
            "List Proxmox VE tasks (vzdump backups, qmstart/qmreboot/qmshutdown, vzmigrate, aptupdate …) of all nodes "
            "in a time window, with status OK or the error text; optionally for one guest. Read-only.",
            PveTaskArgs,
            tasks,
        ),
        make_tool(
            "proxmox_nodes",
            "List the Proxmox VE cluster nodes with online/offline state, CPU, memory and uptime.",
            NoArgs,
            nodes,
        ),
    ]


def pbs_tools(client: PbsClient, *, budget: int, clock: Clock) -> list[BaseTool]:
    """``pbs_tasks``, ``pbs_datastores``, ``pbs_snapshots`` (all read-only)."""

    async def tasks(args: PbsTaskArgs) -> str:
        since, until = args.window_s(clock)
        found = await client.tasks(
            since_s=since, until_s=until, type_filter=args.type_filter, errors_only=args.errors_only, limit=args.limit
        )
        lines = [
            f"{when(t.starttime)} {t.worker_type} {clip(t.worker_id or '', 120)} {_status(t.status)}"
            + (f" took {duration(t.endtime - t.starttime)}" if t.endtime else "")
            for t in found
        ]
        header = f"pbs tasks: {len(found)}, {when(since)} to {when(until)}"
        return fit(
            header,
            lines,
            budget_chars=budget,
            narrow="pass type_filter, errors_only=true or a shorter lookback_minutes",
        )

    async def datastores(args: NoArgs) -> str:
        found = await client.datastores()
        lines = [
            f"{s.store}: unavailable ({clip(s.error, 200)})"
            if s.error
            else f"{s.store}: used {size(s.used)} of {size(s.total)} ({percent(s.used_ratio)}), {size(s.avail)} free"
            + (
                f", estimated full {when(s.estimated_full_date)}"
                if s.estimated_full_date and s.estimated_full_date > 0
                else ""
            )
            for s in found
        ]
        return fit(f"pbs datastores: {len(found)}", lines, budget_chars=budget, narrow="")

    async def snapshots(args: SnapshotArgs) -> str:
        found = await client.snapshots(
            args.store, backup_type=args.backup_type, backup_id=args.backup_id, ns=args.ns, limit=args.limit
        )
        lines = [
            f"{s.backup_type}/{s.backup_id} {when(s.backup_time)} size {size(s.size)} verify={s.verify_state or 'none'}"
            + (" protected" if s.protected else "")
            for s in found
        ]
        return fit(
            f"pbs snapshots in {args.store}" + (f" namespace {args.ns}" if args.ns else "") + f": {len(found)}",
            lines,
            budget_chars=budget,
            narrow="pass backup_type and backup_id",
        )

    return [
        make_tool(
            "pbs_tasks",
            "List Proxmox Backup Server tasks (backup, verificationjob, garbage_collection, prune, syncjob) in a "
            "time window with status OK or the error text. Read-only.",
            PbsTaskArgs,
            tasks,
        ),
        make_tool(
            "pbs_datastores",
            "List Proxmox Backup Server datastores with used/total space, fill level and estimated full date.",
            NoArgs,
            datastores,
        ),
        make_tool(
            "pbs_snapshots",
            "List backup snapshots of a PBS datastore (optionally one guest's group), newest first, with size and "
            "verification state.",
            SnapshotArgs,
            snapshots,
        ),
    ]
