"""The Apprise notifier: one configured URL, filtered by severity, rate-limited across workers, retried by the job.

Only the report's events reach a channel that took the firing message: a report whose firing was filtered out or
held back by the rate limit sends no "resolved" message either (it would announce an end nobody heard begin).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from reports.links import LinkSigner
from reports.models import NotifyEvent, Report
from triage.notify.apprise_sender import AppriseSender, SendError
from triage.notify.base import Outcome
from triage.notify.message import report_message
from triage.notify.rate import RateLimiter

log = logging.getLogger("triage.notify")

# The firing-side states after which no resolved message is sent on that channel.
_SILENT_FIRING = ("filtered", "rate_limited")


@dataclass
class ChatNotifier:
    """Sends a report's short message through one :class:`AppriseSender`."""

    key: str
    sender: AppriseSender
    signer: LinkSigner
    severities: frozenset[str] = frozenset()
    on_resolve: bool = True
    limiter: RateLimiter | None = None

    @property
    def label(self) -> str:
        return self.sender.label

    def wanted(self, report: Report) -> bool:
        """Whether the severity filter lets the report through (no filter: every report)."""
        return not self.severities or (report.alert.severity.lower() or "none") in self.severities

    async def deliver(self, report: Report, event: NotifyEvent, now: datetime) -> Outcome:
        """Send the report's message for ``event`` unless filtered or rate-limited; never raises for a failed send."""
        if not self.wanted(report):
            return Outcome("filtered")
        if event == "resolved":
            if not self.on_resolve:
                return Outcome("skipped")
            before = report.channels.get(self.key)
            if before is not None and before.state in _SILENT_FIRING:
                return Outcome(before.state)
        if self.limiter is not None and not await self.limiter.acquire(self.key, event, report.id):
            return Outcome("rate_limited")
        held = await self.limiter.take_held(self.key, event) if self.limiter is not None else 0
        message = report_message(report, event, self.signer.report_url(report.id, now=now.timestamp()), held_back=held)
        try:
            await self.sender.send(message.title, message.body, message.kind)
        except SendError as exc:
            if self.limiter is not None:
                await self.limiter.release(self.key, event, report.id)
                await self.limiter.put_back(self.key, event, held)
            log.warning("notification not sent", extra={"report_id": report.id, "channel": self.label})
            return Outcome("pending", error=str(exc), transient=True)
        return Outcome("delivered")
