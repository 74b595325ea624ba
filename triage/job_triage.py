"""What the triage job does after the alert is recorded: run the pipeline, store the report, deliver it.

Safe to repeat: the report id is the alert occurrence, so a retried job (a worker killed mid-triage, a Grafana
outage during delivery) overwrites the same report; a report that was already triaged is not triaged again, only
delivered, and delivery updates the annotation it made before instead of adding one.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.asyncio import Redis

from reports.delivery import DeliveryError, deliver, deliver_resolve
from reports.models import Report, ReportStatus, utcnow
from reports.payloads import plausible_start
from reports.store import ReportStore
from tools.errors import SourceError
from triage import storm
from triage.budget import RedisTokenBudget
from triage.deps import Deps, build_deps
from triage.pipeline import triage
from triage.plan import make_plan
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


def anchored(report: Report) -> Report:
    """The report with a start time the triage can work around: a sender's impossible ``startsAt`` (year 1 or
    9999) is replaced by the time the alert was received. The report keeps its id, so re-sends still find it."""
    alert = report.alert
    if plausible_start(alert.starts_at, utcnow()):
        return report
    log.warning(
        "implausible start time, triaging around the time received",
        extra={"report_id": report.id, "starts_at": alert.starts_at.isoformat()},
    )
    return report.model_copy(update={"alert": alert.model_copy(update={"starts_at": report.created_at})})


async def _triage(ctx: dict[str, Any], deps: Deps, received: Report) -> Report:
    """Triage and save; as a storm follower, take the group's report instead (see :mod:`triage.storm`)."""
    received = anchored(received)
    settings: Settings = ctx["settings"]
    store: ReportStore = ctx["store"]
    redis: Redis | None = ctx.get("redis")
    joined: storm.Storm | None = None
    if redis is not None:
        plan = make_plan(received.alert, settings.triage)
        joined = await storm.join(redis, received.alert, plan, settings.triage.storm_window_s, proxmox=deps.proxmox)
    if redis is not None and joined is not None and not joined.leads:
        group = await storm.wait_for_leader(redis, joined, store, settings.triage.storm_wait_s)
        if group is not None:
            member = storm.follower_report(received, group)
            await store.save(member)
            await storm.link_member(redis, joined, store, member.id)
            log.info("storm member", extra={"report_id": member.id, "group_id": group.id})
            return member
        log.warning("storm leader did not finish, triaging alone", extra={"report_id": received.id})
    report = await triage(received.alert, deps, settings.triage, report=received)
    await store.save(report)
    if redis is not None and joined is not None and joined.leads:
        await storm.publish(redis, joined, report)
    return report


async def triage_and_deliver(ctx: dict[str, Any], report: Report) -> Report:
    """Triage the recorded ``report``'s alert (unless an earlier attempt did), save it, deliver it, save again."""
    settings: Settings = ctx["settings"]
    store: ReportStore = ctx["store"]
    deps = job_deps(ctx)
    if not already_triaged(report):
        report = await _triage(ctx, deps, report)
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


async def deliver_resolved(ctx: dict[str, Any], report: Report) -> Report:
    """Extend the resolved report's annotation to the alert's end (no new triage); save the delivery state."""
    settings: Settings = ctx["settings"]
    store: ReportStore = ctx["store"]
    deps = job_deps(ctx)
    try:
        delivered = await deliver_resolve(report, deps.grafana, settings, ends_at=report.resolved_at)
    except DeliveryError as exc:
        await store.save(exc.report)
        cause = exc.__cause__
        if exc.transient and isinstance(cause, SourceError):
            raise cause from exc
        log.warning("resolved report not delivered", extra={"report_id": report.id, "error": str(exc)[:300]})
        return exc.report
    await store.save(delivered)
    return delivered
