"""Guest status check: the Proxmox VM or container behind the alert, and the node it runs on.

Finds the guest through the plan's hints (vmid, names, addresses — the Proxmox client looks across all nodes), then
reads its current status and its node's: not running, paused by QEMU (``qmpstatus`` ``io-error`` when a disk write
failed), rebooted recently (uptime shorter than the window), memory near its limit, a lock (backup, migration,
snapshot), configuration changes waiting for the next start, and a node that is offline, rebooted or saturated. A
healthy guest still yields one low-scored line of context.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from reports.models import Evidence
from tools.errors import SourceError
from tools.proxmox import ProxmoxClient
from tools.proxmox_models import GuestStatus, NodeStatus, PendingChange, Resource
from triage.pipeline.checks.check_context import CheckContext, evidence_id
from triage.pipeline.checks.result import NO_EVIDENCE, CheckResult
from triage.pipeline.checks.spec import CheckSpec

NAME = "guest_status"
MEMORY_HIGH = 0.9
NODE_CPU_HIGH = 0.9
NODE_IOWAIT_HIGH = 0.15
GIB = 1024**3
PENDING_SCORE = 0.45
# QEMU run states (``qmpstatus``) of a VM whose process runs but whose CPUs stand still: what it means, and its score
PAUSED_STATES: dict[str, tuple[str, float]] = {
    "io-error": ("QEMU stopped the VM because a disk write failed (a full thin pool, a storage gone)", 0.9),
    "internal-error": ("QEMU stopped the VM on an internal emulation error", 0.85),
    "guest-panicked": ("the guest kernel panicked (pvpanic)", 0.9),
    "paused": ("the VM is paused (qm suspend, a migration or backup step, or a full storage)", 0.7),
    "suspended": ("the VM is suspended (qm suspend --todisk or guest sleep)", 0.6),
}
MAX_PENDING_SHOWN = 4


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{value * 100:.0f}%"


def _ago(seconds: int) -> str:
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _guest_items(ctx: CheckContext, guest: Resource, status: GuestStatus) -> list[Evidence]:
    label = guest.label(status.name)
    ref = f"/nodes/{guest.node}/{guest.kind}/{status.vmid}/status/current"
    items: list[Evidence] = []

    def add(key: str, title: str, score: float, at: datetime | None = None, detail: str = "") -> None:
        items.append(
            Evidence(
                id=evidence_id("guest", key, status.vmid),
                source="proxmox",
                kind="guest_status",
                title=title,
                detail=detail,
                at=at,
                score=score,
                ref=ref,
                data={"vmid": status.vmid, "node": guest.node},
            )
        )

    paused = PAUSED_STATES.get(status.qmpstatus or "")
    if status.status != "running":
        add("state", f"{label} is {status.status} on {guest.node}", 0.95, detail=f"qmpstatus {status.qmpstatus or '-'}")
    elif paused is not None:
        add("paused", f"{label} is paused ({status.qmpstatus}) on {guest.node}", paused[1], detail=paused[0])
    elif status.uptime and ctx.now - timedelta(seconds=status.uptime) >= ctx.plan.window_start:
        booted = ctx.now - timedelta(seconds=status.uptime)
        add("reboot", f"{label} started {_ago(status.uptime)} ago (rebooted in the window)", 0.85, booted)
    ratio = status.memory_ratio
    if ratio is not None and ratio >= MEMORY_HIGH:
        limit = f"{status.maxmem / GIB:.1f} GiB"
        add("memory", f"{label} uses {_pct(ratio)} of its {limit} memory limit", min(1.0, 0.55 + (ratio - 0.9) * 4))
    if status.lock:
        add("lock", f"{label} is locked: {status.lock}", 0.6)
    if status.ha_state and status.ha_state not in ("started", "ignored"):
        add("ha", f"{label} HA state is {status.ha_state}", 0.7)
    if not items:
        add(
            "ok",
            f"{label} is running on {guest.node}, up {_ago(status.uptime)}, memory {_pct(ratio)} of its limit",
            0.05,
        )
    return items


def _node_items(ctx: CheckContext, node: str, online: bool, status: NodeStatus | None) -> list[Evidence]:
    ref = f"/nodes/{node}/status"
    items: list[Evidence] = []

    def add(key: str, title: str, score: float, at: datetime | None = None) -> None:
        items.append(
            Evidence(
                id=evidence_id("node", key, node),
                source="proxmox",
                kind="node_status",
                title=title,
                at=at,
                score=score,
                ref=ref,
                data={"node": node},
            )
        )

    if not online:
        add("offline", f"Proxmox node {node} is offline", 0.95)
        return items
    if status is None:
        return items
    if status.uptime and ctx.now - timedelta(seconds=status.uptime) >= ctx.plan.window_start:
        add(
            "reboot",
            f"Proxmox node {node} rebooted {_ago(status.uptime)} ago",
            0.85,
            ctx.now - timedelta(seconds=status.uptime),
        )
    if status.cpu >= NODE_CPU_HIGH:
        add("cpu", f"Proxmox node {node} CPU at {_pct(status.cpu)}", min(0.95, 0.5 + (status.cpu - NODE_CPU_HIGH) * 5))
    if status.wait is not None and status.wait >= NODE_IOWAIT_HIGH:
        add("iowait", f"Proxmox node {node} IO wait at {_pct(status.wait)}", min(1.0, 0.5 + status.wait))
    memory = status.memory_ratio
    if memory is not None and memory >= MEMORY_HIGH:
        add("memory", f"Proxmox node {node} memory at {_pct(memory)}", min(0.95, 0.5 + (memory - MEMORY_HIGH) * 5))
    return items


async def _node(proxmox: ProxmoxClient, node: str, online: bool) -> NodeStatus | None:
    return await proxmox.node_status(node) if online else None


async def _guest(proxmox: ProxmoxClient, guest: Resource) -> GuestStatus | None:
    assert guest.node is not None and guest.vmid is not None
    return await proxmox.guest_status(guest.node, guest.vmid, guest.kind)


async def _none() -> None:
    return None


async def _no_changes() -> list[PendingChange]:
    return []


async def _pending(proxmox: ProxmoxClient, guest: Resource) -> list[PendingChange]:
    assert guest.node is not None and guest.vmid is not None
    try:
        return await proxmox.guest_pending(guest.node, guest.vmid, guest.kind)
    except SourceError:
        return []  # an older PVE, or a token without VM.Audit on /pending: the status still counts


def _pending_item(guest: Resource, changes: list[PendingChange]) -> Evidence:
    label = guest.label()
    shown = ", ".join(c.describe() for c in changes[:MAX_PENDING_SHOWN])
    more = f" and {len(changes) - MAX_PENDING_SHOWN} more" if len(changes) > MAX_PENDING_SHOWN else ""
    return Evidence(
        id=evidence_id("guest", "pending", guest.vmid),
        source="proxmox",
        kind="guest_config",
        title=f"{label} has configuration changes waiting for its next start: {shown}{more}",
        detail="written with the guest running; they apply at the next start or reboot (qm/pct pending)",
        score=PENDING_SCORE,
        ref=f"/nodes/{guest.node}/{guest.kind}/{guest.vmid}/pending",
        data={"vmid": guest.vmid, "node": guest.node, "keys": [c.key for c in changes[:20]]},
    )


async def run(ctx: CheckContext) -> CheckResult:
    """State, recent reboot, memory vs limit and lock of the alert's guest, and the health of its node."""
    proxmox = ctx.deps.proxmox
    if proxmox is None:
        return NO_EVIDENCE
    match, nodes = await asyncio.gather(ctx.guest(), proxmox.nodes())
    online = {n.node: n.status == "online" for n in nodes if n.node}
    wanted = list(ctx.plan.nodes)
    if match is not None and match.guest.node:
        wanted.insert(0, match.guest.node)
    wanted = [n for n in dict.fromkeys(wanted) if n in online]
    readable = (
        match is not None
        and bool(match.guest.node)
        and match.guest.vmid is not None
        and online.get(match.guest.node or "")
    )
    guest_task = _guest(proxmox, match.guest) if match is not None and readable else _none()
    pending_task = _pending(proxmox, match.guest) if match is not None and readable else _no_changes()
    guest_status, pending, node_results = await asyncio.gather(
        guest_task, pending_task, asyncio.gather(*(_node(proxmox, n, online[n]) for n in wanted))
    )
    items: list[Evidence] = []
    if match is not None:
        # an offline node cannot report the guest's own status; the cluster view still knows its last state
        current = guest_status or GuestStatus(vmid=match.guest.vmid or 0, status=match.guest.status or "unknown")
        items += _guest_items(ctx, match.guest, current)
        if pending:
            items.append(_pending_item(match.guest, pending))
    for node, node_status in zip(wanted, node_results, strict=True):
        items += _node_items(ctx, node, online[node], node_status)
    return CheckResult(tuple(items))


CHECK = CheckSpec(NAME, run, sources=("proxmox",))
