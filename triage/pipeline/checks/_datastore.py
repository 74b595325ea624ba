"""The PBS datastore an alert names: its usage and estimated full date, and maintenance that keeps failing on it.

Garbage collection is what frees the chunks that pruning released; when it fails (a stale lock, a full disk, an
unreachable mount) nothing is freed until a later run succeeds, and the next backups fill the store. So a failed
maintenance run is not a moment but a condition that lasts until the next successful run of the same job: it is
reported as active from the first failure of the streak, with no end while no run has succeeded since.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from reports.models import Evidence
from tools.pbs import DatastoreUsage, PbsClient, PbsTask
from triage.evidence_facts import facts_data
from triage.pipeline.checks._log_selectors import clip
from triage.pipeline.checks.check_context import CheckContext, evidence_id

MAINTENANCE_LOOKBACK = timedelta(days=3)
MAX_TASKS = 500
# weight of a maintenance job that keeps failing, by how directly it decides the space a datastore has left
MAINTENANCE_KINDS: dict[str, tuple[str, float]] = {
    "garbage_collection": ("garbage collection", 0.9),
    "prune": ("prune", 0.8),
    "prunejob": ("prune", 0.8),
    "verificationjob": ("verify", 0.65),
    "verify": ("verify", 0.65),
    "syncjob": ("sync", 0.6),
}
FULL_RATIO = 0.9
NEARLY_FULL_RATIO = 0.95
FULL_SOON = timedelta(days=7)
FULL_HORIZON = timedelta(days=30)
GIB = 1 << 30


@dataclass(frozen=True)
class FailingJob:
    """The latest finished runs of one maintenance job, when the most recent of them failed."""

    kind: str
    weight: float
    first_failure: PbsTask
    last_failure: PbsTask
    failures: int


def failing_jobs(tasks: list[PbsTask]) -> list[FailingJob]:
    """Maintenance jobs whose latest finished run failed, with the streak of failures since the last success."""
    by_kind: dict[str, list[PbsTask]] = {}
    for task in tasks:
        known = MAINTENANCE_KINDS.get(task.worker_type)
        if known is not None and not task.running:
            by_kind.setdefault(known[0], []).append(task)
    failing: list[FailingJob] = []
    for kind, runs in by_kind.items():
        runs.sort(key=lambda t: t.starttime, reverse=True)
        streak: list[PbsTask] = []
        for run in runs:
            if not run.failed:
                break
            streak.append(run)
        if streak:
            weight = max(MAINTENANCE_KINDS[t.worker_type][1] for t in streak)
            failing.append(FailingJob(kind, weight, streak[-1], streak[0], len(streak)))
    return failing


def _maintenance(ctx: CheckContext, store: str, job: FailingJob) -> Evidence:
    first = datetime.fromtimestamp(job.first_failure.starttime, UTC)
    last = datetime.fromtimestamp(job.last_failure.starttime, UTC)
    offset = (last - ctx.alert.starts_at).total_seconds() / 60
    reason = clip(job.last_failure.status or "failed", 200)
    runs = f"{job.failures} failed runs in a row" if job.failures > 1 else "the latest run failed"
    return Evidence(
        id=evidence_id("bak", "maint", store, job.kind, job.first_failure.upid),
        source="pbs",
        kind="maintenance",
        title=f"PBS {job.kind} of datastore {store} failed: {reason}",
        detail=(
            f"{runs}, the last at {last:%H:%M} UTC ({offset:+.0f} min from the alert start); "
            f"no successful {job.kind} since {first:%Y-%m-%d %H:%M} UTC"
        ),
        at=first,
        score=job.weight,
        ref="/nodes/localhost/tasks",
        # failing until a run succeeds: active from the first failure, with no end
        data={
            **facts_data(active_from=job.first_failure.starttime, active_until=None),
            "failed": True,
            "store": store,
        },
    )


def _days_to_full(usage: DatastoreUsage, now: datetime) -> float | None:
    if usage.estimated_full_date is None or usage.estimated_full_date <= 0:
        return None
    left = usage.estimated_full_date - now.timestamp()
    return left / 86400 if 0 < left <= FULL_HORIZON.total_seconds() else None


def usage_evidence(ctx: CheckContext, usage: DatastoreUsage) -> Evidence:
    """The named datastore's usage: unavailable, nearly full, filling up soon, or (as context) how full it is."""
    base = {"store": usage.store, "used": usage.used, "total": usage.total}
    if usage.error:
        return Evidence(
            id=evidence_id("bak", "store", usage.store),
            source="pbs",
            kind="datastore",
            title=f"PBS datastore {usage.store} is unavailable: {clip(usage.error, 160)}",
            score=0.85,
            ref="/status/datastore-usage",
            data=base,
        )
    ratio = usage.used_ratio
    days = _days_to_full(usage, ctx.now)
    title = (
        f"PBS datastore {usage.store} is {ratio * 100:.0f}% full"
        if ratio is not None
        else f"PBS datastore {usage.store} reports no size"
    )
    if usage.total:
        title += f", {max(0, usage.total - usage.used) / GIB:.0f} GiB free"
    if days is not None:
        title += f", full in about {days:.0f} days" if days >= 1 else ", full within a day"
    score = 0.25
    if ratio is not None and ratio >= NEARLY_FULL_RATIO:
        score = 0.85
    elif ratio is not None and ratio >= FULL_RATIO:
        score = 0.75
    if days is not None and days * 86400 <= FULL_SOON.total_seconds():
        score = max(score, 0.7)
    return Evidence(
        id=evidence_id("bak", "store", usage.store),
        source="pbs",
        kind="datastore",
        title=title,
        detail="the datastore the alert names" + (f"; PBS estimates it full in {days:.1f} days" if days else ""),
        score=score,
        ref="/status/datastore-usage",
        data={**base, "days_to_full": round(days, 1) if days is not None else None},
    )


async def maintenance_tasks(ctx: CheckContext, pbs: PbsClient, store: str) -> list[PbsTask]:
    """Tasks of the last days on datastore ``store`` (a daily garbage collection needs more than the window)."""
    since = int((ctx.now - MAINTENANCE_LOOKBACK).timestamp())
    tasks = await pbs.tasks(since_s=since, store=store, limit=MAX_TASKS)
    # the worker id decides, whatever the server-side filter matched (a datastore name can prefix another's)
    return [t for t in tasks if (t.worker_id or "").split(":", 1)[0] == store]


def named_datastore(
    ctx: CheckContext, store: str, tasks: list[PbsTask], stores: list[DatastoreUsage]
) -> list[Evidence]:
    """Usage and failing maintenance of the datastore ``store`` the alert names."""
    items = [_maintenance(ctx, store, job) for job in failing_jobs(tasks)]
    usage = next((s for s in stores if s.store == store), None)
    if usage is not None:
        items.append(usage_evidence(ctx, usage))
    return items
