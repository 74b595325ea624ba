"""Storms: many alerts of one group or one host starting within a minute (a node down takes its guests with it).

The first alert of a storm leads: it is triaged as usual and its report becomes the group's. Alerts of the same
group that arrive within ``TRIAGE_STORM_WINDOW_S`` of it follow: they wait for the leader's report and take its
evidence and analysis instead of gathering and asking the LLM again, so a storm of fifty alerts costs one triage.
Every member's report carries ``group_id`` (the leader's report id); the leader's lists ``group_members``.

What makes alerts one storm (:func:`storm_basis`): the sender's notification group; else the Proxmox node the alert
names or whose guest it is about. Guest alerts (a TargetDown per guest exporter, an HTTP probe per service) name
different hosts, so before the election the guest is looked up in the cluster listing (one request per storm, the
client keeps it a few seconds, and no per-guest requests): a guest whose node is offline, or whose state PVE no
longer knows, belongs to the node's storm. A guest on a healthy node keeps its own host as the basis, so unrelated
problems of neighbouring guests are not explained by one analysis. Without Proxmox, or when the look-up fails or
is slow, the basis is the alert's own host.

Coordination is through Redis, so it works across worker processes: ``SET NX`` elects the leader, the leader
publishes its report id when saved, followers poll for it. A leader that dies stops publishing; its followers give
up after ``TRIAGE_STORM_WAIT_S`` and triage themselves, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from reports.models import Alert, LlmUsage, Report, ReportStatus, utcnow
from reports.store import ReportStore
from tools.errors import SourceError
from tools.proxmox import ProxmoxClient
from tools.proxmox_models import host_names, split_instance
from triage.constants import STORM_PREFIX
from triage.plan import Plan

RESULT_TTL_S = 3600
POLL_S = 0.25
LOCK_TIMEOUT_S = 10
# the election must not wait long for Proxmox: a slow API only costs grouping, never the triage
LOCATE_TIMEOUT_S = 2.0
MAX_LOCATE_HINTS = 3
# PVE reports guests of a node it cannot reach as "unknown"
LOST_GUEST_STATES = ("unknown",)


@dataclass(frozen=True)
class Storm:
    """One storm as one member sees it: the key, the leader's report id, and whether this member leads."""

    key: str
    leader_id: str
    leads: bool

    @property
    def result_key(self) -> str:
        return f"{STORM_PREFIX}result:{self.key}"

    @property
    def members_key(self) -> str:
        return f"{STORM_PREFIX}members:{self.key}"

    @property
    def lock_key(self) -> str:
        return f"{STORM_PREFIX}lock:{self.key}"


def storm_basis(alert: Alert, plan: Plan, node: str | None = None) -> str | None:
    """What makes alerts one storm: the sender's notification group, else the Proxmox node the alert names, else
    ``node`` (the failed node its guest runs on, from :func:`locate_node`), else the host it names."""
    if alert.group_key:
        return f"group:{alert.group_key}"
    for value in (*plan.nodes, *((node,) if node else ()), *plan.hosts, *plan.addresses):
        return f"host:{value.lower()}"
    return None


async def locate_node(plan: Plan, proxmox: ProxmoxClient) -> str | None:
    """The Proxmox node behind the alert's target when that node is the likely shared cause: the target is a node,
    or a guest on a node that is offline (or that PVE reports in an unknown state). None otherwise.

    Uses the cluster listing only (vmids, names, addresses already learnt), so a storm costs one request.
    """
    nodes = {n.node.lower(): n for n in await proxmox.nodes() if n.node}
    for host in plan.hosts:
        for name in host_names(split_instance(host)[0]):
            if name in nodes:
                return name
    for hint in plan.guest_hints[:MAX_LOCATE_HINTS]:
        match = await proxmox.find_guest(hint, max_lookups=0)
        if match is None or not match.guest.node:
            continue
        name = match.guest.node.lower()
        node = nodes.get(name)
        if match.guest.status in LOST_GUEST_STATES or (node is not None and node.status != "online"):
            return name
        return None
    return None


async def node_of(alert: Alert, plan: Plan, proxmox: ProxmoxClient | None) -> str | None:
    """:func:`locate_node` when the alert needs it, bounded in time; None when Proxmox fails or is slow."""
    if proxmox is None or alert.group_key or plan.nodes:
        return None  # the basis is already known without asking
    try:
        async with asyncio.timeout(LOCATE_TIMEOUT_S):
            return await locate_node(plan, proxmox)
    except (SourceError, TimeoutError):
        return None


async def join(
    redis: Redis, alert: Alert, plan: Plan, window_s: int, *, proxmox: ProxmoxClient | None = None
) -> Storm | None:
    """Lead a new storm or join the running one; None when the alert cannot be part of a storm.

    ``proxmox`` lets guest alerts join the storm of the failed node they run on (see :func:`locate_node`).
    """
    if window_s <= 0:
        return None
    basis = storm_basis(alert, plan, await node_of(alert, plan, proxmox))
    if basis is None:
        return None
    key = hashlib.sha256(basis.encode()).hexdigest()[:20]
    lead_key = f"{STORM_PREFIX}lead:{key}"
    me = alert.occurrence_key
    if await redis.set(lead_key, me, nx=True, ex=window_s):
        return Storm(key, me, leads=True)
    leader = await redis.get(lead_key)
    leader_id = leader.decode() if isinstance(leader, bytes) else str(leader or "")
    if not leader_id or leader_id == me:
        # the window closed between the two calls, or this is the leader's own retry
        return Storm(key, me, leads=True)
    return Storm(key, leader_id, leads=False)


async def publish(redis: Redis, storm: Storm, report: Report) -> None:
    """The leader's report is saved: let the followers use it."""
    await redis.set(storm.result_key, report.id, ex=RESULT_TTL_S)


async def wait_for_leader(redis: Redis, storm: Storm, store: ReportStore, wait_s: float) -> Report | None:
    """The leader's finished report, or None when it does not come within ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if await redis.get(storm.result_key):
            report = await store.get(storm.leader_id)
            if report is not None and report.status in (ReportStatus.triaged, ReportStatus.resolved):
                return report
        await asyncio.sleep(POLL_S)
    return None


def follower_report(received: Report, group: Report) -> Report:
    """A member's report built from the group's: same evidence and analysis, its own alert, linked to the group."""
    prefix = (
        f"Part of an alert storm: {received.alert.alertname} started together with {group.alert.alertname} "
        f"and was triaged with it (group report {group.id}). "
    )
    model = group.llm.model if group.llm else ""
    return received.model_copy(
        update={
            "status": ReportStatus.resolved if received.status == ReportStatus.resolved else ReportStatus.triaged,
            "summary": prefix + group.summary,
            "hypotheses": group.hypotheses,
            "next_steps": group.next_steps,
            "evidence": group.evidence,
            "runbooks": group.runbooks,
            "history": group.history,
            "sources": group.sources,
            "llm": LlmUsage(model=model, skipped_reason=f"shares the analysis of the storm's group report {group.id}"),
            "group_id": group.id,
            "updated_at": utcnow(),
        }
    )


async def link_member(redis: Redis, storm: Storm, store: ReportStore, member_id: str) -> None:
    """Add a member to the group report's ``group_members`` (serialised, so concurrent members are all kept)."""
    await redis.sadd(storm.members_key, member_id)  # type: ignore[misc]
    await redis.expire(storm.members_key, RESULT_TTL_S)
    async with redis.lock(storm.lock_key, timeout=LOCK_TIMEOUT_S, blocking_timeout=LOCK_TIMEOUT_S):
        raw: set[bytes | str] = await redis.smembers(storm.members_key)  # type: ignore[misc]
        members = sorted(m.decode() if isinstance(m, bytes) else str(m) for m in raw)
        group = await store.get(storm.leader_id)
        if group is None:
            return
        await store.save(group.model_copy(update={"group_id": group.id, "group_members": members}))
