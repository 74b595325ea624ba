"""Change timeline check: what changed around the alert, from every source that records changes, merged in order.

Sources: Proxmox
tasks (start/stop/reboot, migrations, snapshots, config, updates); PBS maintenance tasks (garbage collection,
verify, prune, sync); Grafana annotations (deploy markers, manual notes). A source that fails is reported on its
own while the others still count. Backups, and failed maintenance of the datastore an alert names, are the backups
check's. Log lines that announce a change (restarts, deploys, OOM kills, upgrades, reboots, config reloads) are found
by the log pattern check, which reads every line and compares it with the window before
(:func:`triage.pipeline.checks._log_selectors.change_kind` names their kind).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from reports.delivery import ANNOTATION_TAG
from reports.models import Evidence
from tools.proxmox_models import TaskBase
from triage.evidence_facts import facts_data
from triage.pipeline.checks._log_selectors import clip
from triage.pipeline.checks._task_logs import task_stories, worth_reading
from triage.pipeline.checks.check_context import CheckContext, CheckFailed, evidence_id
from triage.pipeline.checks.result import CheckResult
from triage.pipeline.checks.spec import CheckSpec

NAME = "changes"
FAILED_BONUS = 0.25
TARGET_BONUS = 0.15
MAX_ITEMS = 10
# tasks are looked up this far before the window, so a long job that began earlier and still runs is seen
TASK_LOOKBACK_S = 12 * 3600

PVE_TASK_KINDS: dict[str, tuple[str, float]] = {
    "qmstart": ("start", 0.6),
    "vzstart": ("start", 0.6),
    "qmstop": ("stop", 0.75),
    "vzstop": ("stop", 0.75),
    "qmshutdown": ("stop", 0.7),
    "vzshutdown": ("stop", 0.7),
    "qmreboot": ("reboot", 0.75),
    "vzreboot": ("reboot", 0.75),
    "qmreset": ("reboot", 0.75),
    "qmigrate": ("migration", 0.7),
    "vzmigrate": ("migration", 0.7),
    "qmsnapshot": ("snapshot", 0.45),
    "vzsnapshot": ("snapshot", 0.45),
    "qmrollback": ("rollback", 0.75),
    "vzrollback": ("rollback", 0.75),
    "qmconfig": ("config", 0.6),
    "vzconfig": ("config", 0.6),
    "startall": ("node start", 0.8),
    "stopall": ("node stop", 0.8),
    "aptupdate": ("upgrade", 0.4),
    "srvrestart": ("restart", 0.6),
    "srvreload": ("config", 0.5),
    "qmclone": ("clone", 0.35),
    "qmcreate": ("create", 0.35),
    "vzcreate": ("create", 0.35),
    "qmdestroy": ("destroy", 0.5),
    "vzdestroy": ("destroy", 0.5),
}
PBS_TASK_KINDS: dict[str, tuple[str, float]] = {
    "garbage_collection": ("garbage collection", 0.5),
    "verificationjob": ("verify", 0.45),
    "verify": ("verify", 0.45),
    "prune": ("prune", 0.35),
    "prunejob": ("prune", 0.35),
    "syncjob": ("sync", 0.45),
}


def overlaps(task: TaskBase, since_s: int) -> bool:
    """Whether a task was still running at ``since_s`` or started after it (a long job begun earlier counts)."""
    return task.starttime >= since_s or task.endtime is None or task.endtime >= since_s


def _offset(at: datetime, ctx: CheckContext) -> str:
    minutes = (at - ctx.alert.starts_at).total_seconds() / 60
    return f"{minutes:+.0f} min from the alert start"


def on_datastore(worker_id: str | None, datastore: str | None) -> bool:
    """Whether a PBS task (``worker_id`` like ``backup-hdd:vm/101`` or ``backup-hdd``) works on ``datastore``."""
    return bool(datastore and worker_id and worker_id.split(":", 1)[0] == datastore)


async def _from_proxmox(ctx: CheckContext) -> list[Evidence]:
    proxmox = ctx.deps.proxmox
    if proxmox is None:
        return []
    since, until = ctx.epoch_window
    match = await ctx.guest() if ctx.plan.guest_hints else None
    vmid = match.guest.vmid if match else ctx.plan.vmid
    guest_node = match.guest.node if match else None
    tasks = await proxmox.tasks(since_s=since - TASK_LOOKBACK_S, until_s=until, limit=200)
    chosen = [
        task
        for task in tasks
        if task.type in PVE_TASK_KINDS
        and overlaps(task, since)
        and (vmid is None or task.vmid == vmid or (task.vmid is None and task.node in (guest_node, *ctx.plan.nodes)))
    ]
    now_s = ctx.now.timestamp()
    stories = await task_stories(proxmox, [(t.node, t.upid) for t in chosen if worth_reading(t, now_s)])
    items: list[Evidence] = []
    for task in chosen:
        at = datetime.fromtimestamp(task.starttime, UTC)
        kind, score = PVE_TASK_KINDS[task.type]
        outcome = "running" if task.running else ("failed: " + clip(task.status or "", 120) if task.failed else "OK")
        target = f" of {task.id}" if task.id else ""
        story = stories.get(task.upid)
        items.append(
            Evidence(
                id=evidence_id("pve", task.type, task.upid),
                source="proxmox",
                kind=kind,
                title=f"Proxmox {task.type}{target} on {task.node} ({outcome})" + (f": {story}" if story else ""),
                detail=f"{_offset(at, ctx)}; by {task.user or 'unknown'}",
                at=at,
                score=min(
                    1.0,
                    score
                    + (FAILED_BONUS if task.failed else 0.0)
                    + (TARGET_BONUS if vmid is not None and task.vmid == vmid else 0.0),
                ),
                ref=f"/nodes/{task.node}/tasks",
                data={
                    **facts_data(upid=task.upid),
                    "type": task.type,
                    "vmid": task.vmid,
                    **facts_data(
                        about_target=vmid is not None and task.vmid == vmid,
                        active_from=task.starttime,
                        active_until=task.endtime,
                    ),
                },
            )
        )
    return items


async def _from_pbs(ctx: CheckContext) -> list[Evidence]:
    pbs = ctx.deps.pbs
    if pbs is None:
        return []
    since, until = ctx.epoch_window
    # the backups check reports failing maintenance of the alert's datastore, with its streak
    chosen = [
        task
        for task in await pbs.tasks(since_s=since - TASK_LOOKBACK_S, until_s=until, limit=200)
        if task.worker_type in PBS_TASK_KINDS
        and overlaps(task, since)
        and not (on_datastore(task.worker_id, ctx.plan.datastore) and task.failed)
    ]
    now_s = ctx.now.timestamp()
    stories = await task_stories(pbs, [(t.node, t.upid) for t in chosen if worth_reading(t, now_s)])
    items: list[Evidence] = []
    for task in chosen:
        known = PBS_TASK_KINDS[task.worker_type]
        ours = on_datastore(task.worker_id, ctx.plan.datastore)
        at = datetime.fromtimestamp(task.starttime, UTC)
        outcome = "running" if task.endtime is None else ("failed" if task.failed else "OK")
        story = stories.get(task.upid)
        items.append(
            Evidence(
                id=evidence_id("pbs", task.worker_type, task.upid),
                source="pbs",
                kind=known[0],
                title=f"PBS {known[0]} {task.worker_id or ''} ({outcome})".replace("  ", " ")
                + (f": {story}" if story else ""),
                detail=f"{_offset(at, ctx)}",
                at=at,
                score=min(1.0, known[1] + (FAILED_BONUS if task.failed else 0.0) + (TARGET_BONUS if ours else 0.0)),
                ref="/nodes/localhost/tasks",
                data={
                    **facts_data(upid=task.upid),
                    "type": task.worker_type,
                    **facts_data(
                        active_from=task.starttime,
                        active_until=task.endtime,
                        store=task.worker_id.split(":", 1)[0] if task.worker_id else None,
                    ),
                },
            )
        )
    return items


async def _from_grafana(ctx: CheckContext) -> list[Evidence]:
    grafana = ctx.deps.grafana
    if grafana is None:
        return []
    since, until = ctx.epoch_window
    items: list[Evidence] = []
    for note in await grafana.find_annotations(from_ms=since * 1000, to_ms=until * 1000, limit=100):
        if ANNOTATION_TAG in note.tags or note.alert_id:
            continue  # our own reports and Grafana's alert state changes are not changes
        at = datetime.fromtimestamp(note.time_ms / 1000, UTC)
        tags = ", ".join(note.tags[:5])
        items.append(
            Evidence(
                id=evidence_id("ann", note.id),
                source="grafana",
                kind="annotation",
                title=f"Annotation: {clip(note.text, 140)}" + (f" [{tags}]" if tags else ""),
                detail=f"{_offset(at, ctx)}; by {note.login or 'unknown'}",
                at=at,
                score=0.6,
                ref="/api/annotations",
                data={"annotation_id": note.id, "tags": note.tags[:10]},
            )
        )
    return items


SUBSOURCES: dict[str, Callable[[CheckContext], Awaitable[list[Evidence]]]] = {
    "proxmox": _from_proxmox,
    "pbs": _from_pbs,
    "grafana": _from_grafana,
}


async def _timed(
    ctx: CheckContext, name: str, fn: Callable[[CheckContext], Awaitable[list[Evidence]]]
) -> list[Evidence] | None:
    started = time.perf_counter()
    try:
        return await fn(ctx)
    except Exception as exc:
        ctx.note_failure(f"{NAME}:{name}", exc, (time.perf_counter() - started) * 1000)
        return None


async def run(ctx: CheckContext) -> CheckResult:
    """Changes near the alert from Loki, Proxmox, PBS and Grafana, merged and ordered by time."""
    configured = {name: fn for name, fn in SUBSOURCES.items() if getattr(ctx.deps, name) is not None}
    results = await asyncio.gather(*(_timed(ctx, name, fn) for name, fn in configured.items()))
    if configured and all(r is None for r in results):
        failures = [ctx.partial_failures[f"{NAME}:{n}"].error for n in configured]
        raise CheckFailed("; ".join(f for f in failures if f))
    merged = [item for r in results if r for item in r]
    near = sorted(merged, key=lambda e: (-e.score, abs((e.at or ctx.alert.starts_at) - ctx.alert.starts_at)))[
        :MAX_ITEMS
    ]
    near.sort(key=lambda e: e.at or ctx.alert.starts_at)
    return CheckResult(tuple(near))


CHECK = CheckSpec(NAME, run, sources=("proxmox", "pbs", "grafana"))
