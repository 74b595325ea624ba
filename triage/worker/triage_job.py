"""What the triage job does after the alert is recorded: run the pipeline, store the report, deliver it.

Safe to repeat: the report id is the alert occurrence, so a retried job (a worker killed mid-triage, a Grafana
outage during delivery) overwrites the same report; a report that was already triaged is not triaged again, only
delivered, and delivery updates the annotation it made before instead of adding one. Delivery goes to every channel
(:mod:`triage.notify`); a channel that failed transiently makes the job retry with backoff, and the channels that
already delivered are not called again. After the last try the failed channels are marked ``failed``.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from reports.models import NotifyEvent, Report, ReportStatus, utcnow
from reports.payloads import plausible_start
from triage.notify.dispatch import deliver_all, give_up
from triage.notify.stats import record_deliveries
from triage.pipeline.plan import make_plan
from triage.pipeline.run import triage
from triage.worker import storm
from triage.worker.state import WorkerContext

log = logging.getLogger("triage.worker.jobs")


class DeliveryRetry(Exception):
    """A channel failed transiently; the job wrapper retries the job with backoff (delivered channels are kept)."""

    transient = True


async def deliver_event(worker: WorkerContext, report: Report, event: NotifyEvent, *, attempt: int) -> Report:
    """Deliver ``event`` on every channel and save the states; raise :class:`DeliveryRetry` to retry the rest."""
    settings = worker.settings
    store = worker.store
    result = await deliver_all(report, worker.notifiers, event)
    report = result.report
    try:
        await record_deliveries(worker.redis, result.attempted)
    except (RedisError, OSError) as exc:
        log.warning("could not record delivery stats", extra={"report_id": report.id, "error_type": type(exc).__name__})
    if result.retry:
        if attempt < settings.redis.job_max_tries:
            await store.save(report)
            raise DeliveryRetry(f"delivery of report {report.id} will be retried: {report.delivery_error}")
        report = give_up(report, attempt)
        log.warning(
            "report not delivered", extra={"report_id": report.id, "error": (report.delivery_error or "")[:300]}
        )
    await store.save(report)
    return report


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


async def _triage(worker: WorkerContext, received: Report) -> Report:
    """Triage and save; as a storm follower, take the group's report instead (see :mod:`triage.worker.storm`)."""
    received = anchored(received)
    settings, store, redis, deps = worker.settings, worker.store, worker.redis, worker.deps
    plan = make_plan(received.alert, settings.triage)
    joined = await storm.join(redis, received.alert, plan, settings.triage.storm_window_s, proxmox=deps.proxmox)
    if joined is not None and not joined.leads:
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
    if joined is not None and joined.leads:
        await storm.publish(redis, joined, report)
    return report


async def triage_and_deliver(worker: WorkerContext, report: Report, *, attempt: int = 1) -> Report:
    """Triage the recorded ``report``'s alert (unless an earlier attempt did), save it, deliver it, save again."""
    if not already_triaged(report):
        report = await _triage(worker, report)
    return await deliver_event(worker, report, "triaged", attempt=attempt)


async def deliver_resolved(worker: WorkerContext, report: Report, *, attempt: int = 1) -> Report:
    """Deliver the resolve (annotation extended to the alert's end, a "resolved" message); no new triage."""
    return await deliver_event(worker, report, "resolved", attempt=attempt)
