"""Storms: many alerts of one group or one host starting within a minute (a node down takes its guests with it).

The first alert of a storm leads: it is triaged as usual and its report becomes the group's. Alerts of the same
group that arrive within ``TRIAGE_STORM_WINDOW_S`` of it follow: they wait for the leader's report and take its
evidence and analysis instead of gathering and asking the LLM again, so a storm of fifty alerts costs one triage.
Every member's report carries ``group_id`` (the leader's report id); the leader's lists ``group_members``.

What makes alerts one storm (:func:`storm_basis`): a failed Proxmox node first, then the sender's notification
group, then the node or host the alert names. A node down takes its guests with it, and the alerts about it come
in several notification groups (Grafana and Alertmanager usually group by alertname: the node's NodeDown, a
TargetDown per guest exporter, an HTTP probe per service), each naming a different host. So before the election
the alert's target is looked up in the cluster listing (one request per storm, the client keeps it a few seconds,
and no per-guest requests, see :func:`locate_node`): an alert about a node that is not online, about a guest on
such a node, or about a guest whose state PVE no longer knows, joins the storm ``host:<node>``, whatever its group
key. Otherwise an alert with a group key keeps its group: a CPU alert on an online node is not merged with other
alerts about that node just because it names the node, and a guest on a healthy node is not explained by its
neighbours' analysis. Without a group key the basis is the node the alert names (or whose exporter it is about),
else its own host. Without Proxmox, or when the look-up fails or takes longer than ``LOCATE_TIMEOUT_S``, nothing
counts as failed: the basis is the group key, else the alert's own node or host.

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
from triage.constants import storm_lead_key, storm_lock_key, storm_members_key, storm_result_key
from triage.pipeline.plan_model import Plan

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
        return storm_result_key(self.key)

    @property
    def members_key(self) -> str:
        return storm_members_key(self.key)

    @property
    def lock_key(self) -> str:
        return storm_lock_key(self.key)


@dataclass(frozen=True)
class Located:
    """The Proxmox node behind an alert's target (lower-case): the target itself when ``is_node``, else the node of
    the guest it is about; ``failed`` when that node is not online or PVE no longer knows the guest's state."""

    node: str
    is_node: bool
    failed: bool


def storm_basis(alert: Alert, plan: Plan, located: Located | None = None) -> str | None:
    """What makes alerts one storm: the failed node behind the target (``located``, from :func:`node_of`), else the
    sender's notification group, else the Proxmox node the alert names or is about, else the host it names."""
    if located is not None and located.failed:
        return f"host:{located.node}"
    if alert.group_key:
        return f"group:{alert.group_key}"
    named = (located.node,) if located is not None and located.is_node else ()
    for value in (*plan.nodes, *named, *plan.hosts, *plan.addresses):
        return f"host:{value.lower()}"
    return None


async def locate_node(plan: Plan, proxmox: ProxmoxClient) -> Located | None:
    """The Proxmox node behind the alert's target and whether it failed; None when the cluster knows neither.

    The target is a node when the alert names one the cluster knows (a node label, or the host of a node's own
    exporter) and no guest; with a vmid, the node label is where the guest runs, so the guest is looked up, and the
    node label only decides when it is offline or the guest is not found. Uses the cluster listing only (vmids,
    names, addresses already learnt), so a storm costs one request.
    """
    nodes = {n.node.lower(): n for n in await proxmox.nodes() if n.node}
    named = next(
        (
            name
            for target in (*plan.nodes, *(split_instance(host)[0] for host in plan.hosts))
            for name in sorted(host_names(target))
            if name in nodes
        ),
        None,
    )
    if named is not None and (plan.vmid is None or nodes[named].status != "online"):
        return Located(named, is_node=True, failed=nodes[named].status != "online")
    for hint in plan.guest_hints[:MAX_LOCATE_HINTS]:
        match = await proxmox.find_guest(hint, max_lookups=0)
        if match is None or not match.guest.node:
            continue
        name = match.guest.node.lower()
        node = nodes.get(name)
        lost = match.guest.status in LOST_GUEST_STATES or (node is not None and node.status != "online")
        return Located(name, is_node=False, failed=lost)
    if named is not None:
        return Located(named, is_node=True, failed=False)
    return None


async def node_of(alert: Alert, plan: Plan, proxmox: ProxmoxClient | None) -> Located | None:
    """:func:`locate_node` when the alert needs it, bounded in time; None when Proxmox fails or is slow."""
    if proxmox is None or not (plan.nodes or plan.hosts or plan.guest_hints):
        return None  # nothing to look up
    if plan.nodes and not alert.group_key:
        return None  # the basis is the node it names, whatever the node's state
    try:
        async with asyncio.timeout(LOCATE_TIMEOUT_S):
            return await locate_node(plan, proxmox)
    except (SourceError, TimeoutError):
        return None


async def join(
    redis: Redis, alert: Alert, plan: Plan, window_s: int, *, proxmox: ProxmoxClient | None = None
) -> Storm | None:
    """Lead a new storm or join the running one; None when the alert cannot be part of a storm.

    ``proxmox`` lets alerts about a failed node or its guests join the node's storm (see :func:`locate_node`).
    """
    if window_s <= 0:
        return None
    basis = storm_basis(alert, plan, await node_of(alert, plan, proxmox))
    if basis is None:
        return None
    key = hashlib.sha256(basis.encode()).hexdigest()[:20]
    lead_key = storm_lead_key(key)
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
