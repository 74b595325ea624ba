"""The arq job functions: one triage per alert occurrence, one resolve per resolved occurrence.

A job receives the normalised alert (``Alert.model_dump(mode="json")``) and records it durably before anything else,
so an alert is never lost even when later steps fail. Transient failures (store, Redis, a data source that is
down) are retried with exponential backoff through :class:`arq.worker.Retry`; on the last try the error is raised so
the job is recorded as failed, and the report says so (:mod:`triage.worker.give_up`): a job never leaves a report that
looks as if it were still on its way. A job runs under a deadline a little inside arq's ``JOB_TIMEOUT_S``, so that a
hung job is a retried error the job sees, not a cancellation that leaves no trace. Every attempt is counted in
:mod:`triage.worker.job_stats`.

arq's job context (``ctx``) holds what :mod:`triage.worker.arq_settings` created at start-up as one
:class:`~triage.worker.state.WorkerContext` (settings, store, Redis, the triage's clients); jobs read it through
:meth:`~triage.worker.state.WorkerContext.from_ctx`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from arq.worker import Retry
from pydantic import ValidationError
from redis.exceptions import RedisError

from reports.models import Alert, AlertStatus, Report, ReportStatus, utcnow
from reports.store import ReportStore, StoreError
from tools.backoff import backoff_delay_s
from tools.errors import SourceError
from triage.settings import Settings
from triage.worker.give_up import record_give_up
from triage.worker.job_stats import record_job
from triage.worker.state import WorkerContext, job_try
from triage.worker.triage_job import DeliveryRetry, deliver_resolved, triage_and_deliver

log = logging.getLogger("triage.worker.jobs")

Ctx = dict[str, Any]
JobFunction = Callable[[Ctx, dict[str, Any]], Awaitable[dict[str, Any]]]

MAX_RETRY_DELAY_S = 600.0
# Time left inside arq's job timeout to record a give-up: 10 % of it, at most 30 s.
DEADLINE_MARGIN_S = 30.0


class InvalidJob(Exception):
    """The job's alert cannot be read; retrying would not help."""


class JobDeadline(TimeoutError):
    """The job ran out of its time (a source or Grafana that accepts and never answers); retried like a timeout."""


def job_deadline_s(settings: Settings) -> float:
    """How long one attempt may run: inside ``JOB_TIMEOUT_S``, leaving time to record the outcome."""
    timeout_s = float(settings.redis.job_timeout_s)
    return max(timeout_s * 0.9, timeout_s - DEADLINE_MARGIN_S)


def is_transient(exc: BaseException) -> bool:
    """Whether a later attempt may succeed: the store or Redis failed, a data source or a channel is down."""
    if isinstance(exc, StoreError | RedisError | ConnectionError | TimeoutError | DeliveryRetry):
        return True
    return isinstance(exc, SourceError) and exc.transient


def retry_delay_s(job_try: int, base_s: float) -> float:
    """Exponential backoff: base, 2×base, 4×base … capped at ten minutes."""
    return backoff_delay_s(job_try, first_s=base_s, cap_s=MAX_RETRY_DELAY_S)


def measured(function: JobFunction) -> JobFunction:
    """Count the attempt's outcome and duration; turn transient errors into a deferred retry until the last try."""

    @wraps(function)
    async def run(ctx: Ctx, alert: dict[str, Any]) -> dict[str, Any]:
        worker = WorkerContext.from_ctx(ctx)
        settings = worker.settings
        attempt = job_try(ctx)
        started = time.monotonic()
        outcome = "failure"
        deadline_s = job_deadline_s(settings)
        try:
            scope = asyncio.timeout(deadline_s)
            try:
                async with scope:
                    result = await function(ctx, alert)
            except TimeoutError as exc:
                if not scope.expired():
                    raise
                raise JobDeadline(f"the attempt did not finish within {deadline_s:.0f} s") from exc
            outcome = "success"
            return result
        except Exception as exc:
            if is_transient(exc) and attempt < settings.redis.job_max_tries:
                outcome = "retry"
                delay_s = retry_delay_s(attempt, settings.redis.job_retry_backoff_s)
                log.warning(
                    "transient failure, retrying",
                    extra={
                        **_keys(ctx, alert),
                        "error_type": type(exc).__name__,
                        "error": str(exc)[:300],
                        "retry_in_s": delay_s,
                    },
                )
                raise Retry(defer=delay_s) from exc
            log.error("job failed", extra={**_keys(ctx, alert), "error_type": type(exc).__name__, "error": str(exc)})
            await record_give_up(worker.store, alert, exc, attempt)
            raise
        finally:
            try:
                await record_job(worker.redis, function.__name__, outcome, time.monotonic() - started)
            except (RedisError, OSError) as exc:
                log.warning("could not record job stats", extra={**_keys(ctx, alert), "error_type": type(exc).__name__})

    return run


def _keys(ctx: Ctx, alert: dict[str, Any]) -> dict[str, Any]:
    return {"job_id": ctx.get("job_id"), "job_try": ctx.get("job_try"), "fingerprint": alert.get("fingerprint")}


def load_alert(data: dict[str, Any]) -> Alert:
    try:
        return Alert.model_validate(data)
    except ValidationError as exc:
        raise InvalidJob(f"the job's alert is not valid: {exc.error_count()} problem(s)") from None


async def record_received(store: ReportStore, alert: Alert) -> Report:
    """Store the alert as a ``received`` report (or fetch the report this occurrence already has)."""
    return await store.record_alert(alert)


async def mark_resolved(store: ReportStore, report: Report, alert: Alert) -> Report:
    """Close the occurrence's report: status ``resolved``, the end time the sender gave (or now)."""
    ended_at = alert.ends_at or utcnow()
    resolved_alert = report.alert.model_copy(update={"status": AlertStatus.resolved, "ends_at": ended_at})
    updated = report.model_copy(
        update={
            "status": ReportStatus.resolved,
            "resolved_at": ended_at,
            "alert": resolved_alert,
            "updated_at": utcnow(),
        }
    )
    await store.save(updated)
    return updated


def job_result(report: Report) -> dict[str, Any]:
    return {"report_id": report.id, "status": report.status.value, "fingerprint": report.alert.fingerprint}


@measured
async def triage_alert(ctx: Ctx, alert: dict[str, Any]) -> dict[str, Any]:
    """Triage one firing alert occurrence: record it durably, gather and analyse evidence, store and deliver."""
    worker = WorkerContext.from_ctx(ctx)
    parsed = load_alert(alert)
    report = await record_received(worker.store, parsed)
    log.info("alert recorded", extra={**_keys(ctx, alert), "report_id": report.id, "alertname": parsed.alertname})
    report = await triage_and_deliver(worker, report, attempt=job_try(ctx))
    return job_result(report)


@measured
async def resolve_alert(ctx: Ctx, alert: dict[str, Any]) -> dict[str, Any]:
    """Mark the report of a resolved alert occurrence as resolved (creating it when the firing was never seen)."""
    worker = WorkerContext.from_ctx(ctx)
    parsed = load_alert(alert)
    report = await record_received(worker.store, parsed)
    report = await mark_resolved(worker.store, report, parsed)
    log.info("alert resolved", extra={**_keys(ctx, alert), "report_id": report.id})
    report = await deliver_resolved(worker, report, attempt=job_try(ctx))
    return job_result(report)


async def purge_reports(ctx: Ctx) -> int:
    """Apply report retention (``REPORT_RETENTION_DAYS``, ``REPORT_RETENTION_COUNT``); run hourly by the worker."""
    worker = WorkerContext.from_ctx(ctx)
    storage = worker.settings.storage
    if not storage.report_retention_days and not storage.report_retention_count:
        return 0
    deleted = await worker.store.purge(
        older_than_days=storage.report_retention_days, keep_count=storage.report_retention_count
    )
    if deleted:
        log.info("reports purged", extra={"deleted": deleted})
    return int(deleted)
