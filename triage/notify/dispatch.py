"""The one place a report is delivered: every channel in turn, each channel's state recorded on the report.

``Report.channels`` holds one :class:`~reports.models.ChannelDelivery` per channel; ``Report.delivery`` and
``Report.delivery_error`` keep their meaning for readers that predate channels: the overall state (failed, else
pending, else delivered …) and the errors of the channels that did not deliver.

Idempotent per event: a channel that already finished an event (delivered, filtered, rate-limited) is not called
again for it, so the job can be retried after one channel failed without the others sending twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from reports.models import ChannelDelivery, ChannelState, DeliveryState, NotifyEvent, Report
from reports.redact import redact_text
from reports.text import one_line
from triage.notify.base import FINAL_STATES, Notifier

MAX_ERROR_CHARS = 500
# Worst first: the overall state is the first one any channel is in.
_ORDER: tuple[ChannelState, ...] = ("failed", "pending", "delivered", "skipped", "rate_limited", "filtered")


@dataclass(frozen=True)
class Delivered:
    """The report with every channel's state, whether a channel asks for a retry, and what this round attempted."""

    report: Report
    retry: bool
    attempted: dict[str, ChannelState] = field(default_factory=dict)


def overall(channels: dict[str, ChannelDelivery]) -> tuple[DeliveryState, str | None]:
    """``delivery`` and ``delivery_error`` of a report from its channels' states."""
    states = {c.state for c in channels.values()}
    state = next((s for s in _ORDER if s in states), "disabled")
    # filtered and rate-limited channels did their job (the user asked for it): the report counts as delivered
    delivery = DeliveryState(state) if state not in ("rate_limited", "filtered") else DeliveryState.delivered
    errors = [(c.label, c.error) for c in channels.values() if c.error and c.state in ("failed", "pending")]
    if not errors:
        return delivery, None
    if len(errors) == 1 and len(channels) == 1:
        return delivery, errors[0][1]
    return delivery, one_line("; ".join(f"{label}: {error}" for label, error in errors), MAX_ERROR_CHARS)


def _done(report: Report, key: str, event: NotifyEvent) -> bool:
    current = report.channels.get(key)
    return current is not None and current.event == event and current.state in FINAL_STATES


async def deliver_all(
    report: Report, notifiers: Sequence[Notifier], event: NotifyEvent, *, now: datetime | None = None
) -> Delivered:
    """Deliver ``event`` of ``report`` on every channel not yet done with it; return the report with the states."""
    now = now or datetime.now(UTC)
    retry = False
    attempted: dict[str, ChannelState] = {}
    for notifier in notifiers:
        if _done(report, notifier.key, event):
            continue
        previous = report.channels.get(notifier.key)
        attempts = previous.attempts + 1 if previous is not None and previous.event == event else 1
        outcome = await notifier.deliver(report, event, now)
        if outcome.report is not None:
            report = outcome.report
        error = one_line(redact_text(outcome.error), MAX_ERROR_CHARS) if outcome.error else None
        channel = ChannelDelivery(
            label=notifier.label, state=outcome.state, event=event, error=error, attempts=attempts, at=now
        )
        report = report.model_copy(update={"channels": {**report.channels, notifier.key: channel}})
        retry = retry or outcome.transient
        attempted[notifier.key] = outcome.state
    delivery, delivery_error = overall(report.channels)
    updated = report.model_copy(update={"delivery": delivery, "delivery_error": delivery_error, "updated_at": now})
    return Delivered(updated, retry, attempted)


def _gave_up(attempts: int, error: str | None) -> str:
    noun = "attempt" if attempts == 1 else "attempts"
    return f"gave up after {attempts} {noun}" + (f": {error}" if error else "")


def give_up(report: Report, attempts: int, *, now: datetime | None = None) -> Report:
    """After the last try: channels still pending become failed, so the page stops promising a retry."""
    now = now or datetime.now(UTC)
    channels = {
        key: c.model_copy(update={"state": "failed", "error": _gave_up(attempts, c.error)})
        if c.state == "pending"
        else c
        for key, c in report.channels.items()
    }
    delivery, delivery_error = overall(channels)
    return report.model_copy(
        update={"channels": channels, "delivery": delivery, "delivery_error": delivery_error, "updated_at": now}
    )
