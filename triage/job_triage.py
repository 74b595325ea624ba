"""What the triage job does after the alert is recorded: run the pipeline, store the report, deliver it.

Safe to repeat: the report id is the alert occurrence, so a retried job (a worker killed mid-triage, a Grafana
outage during delivery) overwrites the same report; a report that was already triaged is not triaged again, only
delivered, and delivery updates the annotation it made before instead of adding one.
"""

from __future__ import annotations

import logging
from typing import Any

from reports.delivery import DeliveryError, deliver
from reports.models import Report, ReportStatus
from reports.store import ReportStore
from tools.errors import SourceError
from triage.budget import RedisTokenBudget
from triage.deps import Deps, build_deps
from triage.pipeline import triage
from triage.settings import Settings

log = logging.getLogger("triage.jobs")


def job_deps(ctx: dict[str, Any]) -> Deps:
    """The worker's shared clients (made at start-up; made here once when a caller's context lacks them)."""
    deps = ctx.get("deps")
    if deps is None:
        settings: Settings = ctx["settings"]
        budget = RedisTokenBudget(ctx["redis"]) if ctx.get("redis") is not None else None
        deps = build_deps(settings, budget=budget, store=ctx["store"])
        ctx["deps"] = deps
    return deps


def already_triaged(report: Report) -> bool:
    return report.status in (ReportStatus.triaged, ReportStatus.resolved) and bool(report.sources)


async def triage_and_deliver(ctx: dict[str, Any], report: Report) -> Report:
    """Triage the recorded ``report``'s alert (unless an earlier attempt did), save it, deliver it, save again."""
    settings: Settings = ctx["settings"]
    store: ReportStore = ctx["store"]
    deps = job_deps(ctx)
    if not already_triaged(report):
        report = await triage(report.alert, deps, settings.triage, report=report)
        await store.save(report)
    try:
        delivered = await deliver(report, deps.grafana, settings)
    except DeliveryError as exc:
        await store.save(exc.report)
        cause = exc.__cause__
        if exc.transient and isinstance(cause, SourceError):
            raise cause from exc  # the job wrapper retries transient source errors with backoff
        log.warning("report not delivered", extra={"report_id": report.id, "error": str(exc)[:300]})
        return exc.report
    await store.save(delivered)
    return delivered
