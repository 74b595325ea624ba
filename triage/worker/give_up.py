"""What a job leaves behind when it gives up: a report that says so, never a silent ``received`` or ``pending``.

A triage that fails for good (an error no retry can fix, or the last try) turns the occurrence's report
``failed`` with the reason in its summary; a triaged report whose delivery ran out of tries gets delivery
``failed`` with the reason. Recording the failure must not hide the job's own error: when the store is down too,
it is logged and the job's error is what arq records.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from reports.models import Alert, DeliveryState, Report, ReportStatus, utcnow
from reports.store import ReportStore, StoreError
from reports.text import one_line

log = logging.getLogger("triage.worker.jobs")

MAX_REASON_CHARS = 400


def failure_reason(exc: BaseException, tries: int) -> str:
    """One line for the report page: how many tries, the error type and its (already secret-free) message."""
    detail = one_line(str(exc), MAX_REASON_CHARS) or "no detail"
    attempts = "1 try" if tries == 1 else f"{tries} tries"
    return f"gave up after {attempts}: {type(exc).__name__}: {detail}"


def given_up(report: Report, reason: str) -> Report | None:
    """``report`` marked as given up (None when it needs no change): an untriaged report becomes ``failed``; a
    triaged one still waiting for delivery gets delivery ``failed``, and so does every channel still ``pending``."""
    now = utcnow()
    if report.status is ReportStatus.received:
        return report.model_copy(
            update={"status": ReportStatus.failed, "summary": f"Triage {reason}", "updated_at": now}
        )
    waiting = {k: c for k, c in report.channels.items() if c.state == "pending"}
    if report.delivery is DeliveryState.pending or waiting:
        channels = {
            **report.channels,
            **{k: c.model_copy(update={"state": "failed", "error": reason, "at": now}) for k, c in waiting.items()},
        }
        return report.model_copy(
            update={"delivery": DeliveryState.failed, "delivery_error": reason, "channels": channels, "updated_at": now}
        )
    return None


async def record_give_up(store: ReportStore | None, alert_data: dict[str, Any], exc: BaseException, tries: int) -> None:
    """Mark the report of the job's alert as given up (creating it when the job failed before recording it)."""
    if store is None:
        return
    try:
        alert = Alert.model_validate(alert_data)
    except ValidationError:
        return  # not an alert at all: nothing to attach a report to (the job error says why)
    reason = failure_reason(exc, tries)
    try:
        report = await store.get(alert.occurrence_key) or await store.record_alert(alert)
        updated = given_up(report, reason)
        if updated is not None:
            await store.save(updated)
    except (StoreError, OSError) as store_exc:
        log.error(
            "could not record the failure on the report",
            extra={"fingerprint": alert.fingerprint, "error_type": type(store_exc).__name__},
        )
