"""The Grafana annotation as a notifier (see :mod:`reports.delivery` for what it does on Grafana)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from reports.delivery import DeliveryError, deliver, deliver_resolve
from reports.links import SettingsLike
from reports.models import ChannelState, NotifyEvent, Report
from tools.grafana import GrafanaClient
from triage.notify.base import Outcome

KEY = "grafana"


@dataclass
class GrafanaNotifier:
    """Creates the report's annotation, and extends the same one when the alert resolves."""

    grafana: GrafanaClient | None
    settings: SettingsLike
    key: str = KEY

    @property
    def label(self) -> str:
        return "Grafana annotation"

    async def deliver(self, report: Report, event: NotifyEvent, now: datetime) -> Outcome:
        """Create or update the annotation; Grafana not configured is ``disabled``."""
        if self.grafana is None:
            return Outcome("disabled")
        try:
            if event == "resolved":
                done = await deliver_resolve(report, self.grafana, self.settings, ends_at=report.resolved_at, now=now)
            else:
                done = await deliver(report, self.grafana, self.settings, now=now)
        except DeliveryError as exc:
            state: ChannelState = "pending" if exc.transient else "failed"
            return Outcome(state, report=exc.report, error=exc.report.delivery_error, transient=exc.transient)
        return Outcome("delivered", report=done)
