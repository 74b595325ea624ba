"""Backup check: backup jobs that overlap the alert window (PBS and Proxmox vzdump), failures, and datastores
running out of space.

A backup reads every block of a guest's disks and writes them to the backup storage: the usual cause of disk IO
alerts at night, and of slow services during the day when a job overruns. Jobs are looked up from well before the
window, since a long job that started hours earlier can still be running at the alert.

When the alert names a PBS datastore (``datastore``/``store`` label), that datastore is examined on its own: its
usage and estimated full date, and its maintenance (garbage collection, prune, verify, sync) over the last days. A
failed garbage collection or prune frees nothing until a later run succeeds, so its failure lasts until then and
ranks as a condition present at the alert's start, far above the routine backups that filled the store.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from reports.models import Evidence
from tools.pbs import PbsTask
from tools.proxmox_models import TaskBase
from triage.evidence_facts import facts_data
from triage.pipeline.checks._datastore import maintenance_tasks, named_datastore
from triage.pipeline.checks._task_logs import task_stories, worth_reading
from triage.pipeline.checks.changes import on_datastore
from triage.pipeline.checks.check_context import CheckContext, CheckFailed, describe_error, evidence_id
from triage.pipeline.checks.result import CheckResult
from triage.pipeline.checks.spec import CheckSpec

NAME = "backups"
LOOKBACK = timedelta(hours=12)
STORE_FULL = 0.9
FULL_SOON = timedelta(days=7)
MAX_ITEMS = 6
PBS_BACKUP_TYPES = {"backup", "reader"}


def _overlap(start_s: int, end_s: int | None, ctx: CheckContext) -> tuple[bool, bool]:
    """(overlaps the window, covers the alert start)."""
    window_start, window_end = ctx.epoch_window
    alert_s = ctx.alert.starts_at.timestamp()
    end = end_s if end_s is not None else ctx.now.timestamp()
    return start_s <= window_end and end >= window_start, start_s <= alert_s <= end + 60


def _item(
    ctx: CheckContext,
    *,
    ident: str,
    source: str,
    title: str,
    start_s: int,
    end_s: int | None,
    failed: bool,
    ours: bool,
    ref: str,
    story: str | None = None,
    store: str | None = None,
) -> Evidence | None:
    overlaps, covers = _overlap(start_s, end_s, ctx)
    if not overlaps:
        return None
    # a backup that finished before the alert started rarely explains it; one running across the start often does
    score = 0.75 if covers else 0.4
    score += 0.15 if ours else 0.0
    score += 0.2 if failed else 0.0
    started = datetime.fromtimestamp(start_s, UTC)
    duration = f"ran {((end_s or ctx.now.timestamp()) - start_s) / 60:.0f} min" + ("" if end_s else " so far")
    outcome = "failed" if failed else ("running" if end_s is None else "finished")
    offset = (started - ctx.alert.starts_at).total_seconds() / 60
    return Evidence(
        id=evidence_id("bak", source, ident),
        source=source,
        kind="backup",
        title=f"{title} {outcome}"
        + (" during the alert start" if covers else " in the window")
        + (f": {story}" if story else ""),
        detail=f"started {offset:+.0f} min from the alert start, {duration}",
        at=started,
        score=min(1.0, score),
        ref=ref,
        data={**facts_data(active_from=start_s, active_until=end_s), "failed": failed, **facts_data(store=store)},
    )


def _worth_reading(ctx: CheckContext, task: TaskBase) -> bool:
    """A failed or long-running backup that overlaps the window: its log says why."""
    return worth_reading(task, ctx.now.timestamp()) and _overlap(task.starttime, task.endtime, ctx)[0]


async def _nothing() -> list[PbsTask]:
    return []


async def _pbs(ctx: CheckContext, vmid: int | None) -> list[Evidence]:
    pbs = ctx.deps.pbs
    if pbs is None:
        return []
    since = int((ctx.plan.window_start - LOOKBACK).timestamp())
    named = ctx.plan.datastore
    tasks, stores, maintenance = await asyncio.gather(
        pbs.tasks(since_s=since, limit=500),
        pbs.datastores(),
        maintenance_tasks(ctx, pbs, named) if named else _nothing(),
    )
    backups = [task for task in tasks if task.worker_type in PBS_BACKUP_TYPES]
    stories = await task_stories(pbs, [(t.node, t.upid) for t in backups if _worth_reading(ctx, t)])
    items: list[Evidence] = []
    for task in backups:
        worker = task.worker_id or ""
        ours = (vmid is not None and worker.split(":")[-1].split("/")[-1] == str(vmid)) or on_datastore(
            worker, ctx.plan.datastore
        )
        item = _item(
            ctx,
            ident=task.upid,
            source="pbs",
            title=f"PBS backup {worker}".strip(),
            start_s=task.starttime,
            end_s=task.endtime,
            failed=task.failed,
            ours=ours,
            ref="/nodes/localhost/tasks",
            story=stories.get(task.upid),
            store=worker.split(":", 1)[0] or None,
        )
        if item:
            items.append(item)
    if named:
        items.extend(named_datastore(ctx, named, maintenance, stores))
    for store in stores:
        if store.store == named:
            continue
        ratio = store.used_ratio
        soon = (
            store.estimated_full_date is not None
            and 0 < store.estimated_full_date - ctx.now.timestamp() < FULL_SOON.total_seconds()
        )
        if (ratio is not None and ratio >= STORE_FULL) or soon:
            pct = f"{ratio * 100:.0f}%" if ratio is not None else "?"
            items.append(
                Evidence(
                    id=evidence_id("bak", "store", store.store),
                    source="pbs",
                    kind="datastore",
                    title=f"PBS datastore {store.store} is {pct} full" + (", full within a week" if soon else ""),
                    score=0.7 if ratio is not None and ratio >= 0.95 else 0.55,
                    ref="/status/datastore-usage",
                    data={"store": store.store, "used": store.used, "total": store.total},
                )
            )
    return items


async def _vzdump(ctx: CheckContext, vmid: int | None) -> list[Evidence]:
    proxmox = ctx.deps.proxmox
    if proxmox is None:
        return []
    since = int((ctx.plan.window_start - LOOKBACK).timestamp())
    dumps = [task for task in await proxmox.tasks(since_s=since, limit=500) if task.type == "vzdump"]
    stories = await task_stories(proxmox, [(t.node, t.upid) for t in dumps if _worth_reading(ctx, t)])
    items: list[Evidence] = []
    for task in dumps:
        item = _item(
            ctx,
            ident=task.upid,
            source="proxmox",
            title=f"vzdump {task.id or 'job'} on {task.node}",
            start_s=task.starttime,
            end_s=task.endtime,
            failed=task.failed,
            ours=vmid is not None and task.vmid == vmid,
            ref=f"/nodes/{task.node}/tasks",
            story=stories.get(task.upid),
        )
        if item:
            items.append(item)
    return items


async def run(ctx: CheckContext) -> CheckResult:
    """Backups overlapping the window (the alert's guest first), failed backups, and nearly full datastores."""
    vmid = ctx.plan.vmid
    if vmid is None and ctx.deps.proxmox is not None and ctx.plan.guest_hints:
        try:
            match = await ctx.guest()
        except Exception as exc:
            ctx.note_failure(f"{NAME}:guest-lookup", exc)
            match = None
        vmid = match.guest.vmid if match else None
    results = await asyncio.gather(_pbs(ctx, vmid), _vzdump(ctx, vmid), return_exceptions=True)
    failed = {
        name: result
        for name, result in zip(("pbs", "proxmox"), results, strict=True)
        if isinstance(result, BaseException)
    }
    configured = [name for name in ("pbs", "proxmox") if getattr(ctx.deps, name) is not None]
    if configured and set(configured) <= set(failed):
        raise CheckFailed("; ".join(describe_error(error) for error in failed.values())[:500])
    for name, error in failed.items():
        if isinstance(error, Exception):
            ctx.note_failure(f"{NAME}:{name}", error)
        else:
            raise error
    items = [item for r in results if not isinstance(r, BaseException) for item in r]
    items.sort(key=lambda e: e.score, reverse=True)
    return CheckResult(tuple(items[:MAX_ITEMS]))


CHECK = CheckSpec(NAME, run, sources=("pbs", "proxmox"))
