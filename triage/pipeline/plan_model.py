"""The plan of one triage as data: the window, the checks to run and the targets they look at (made by
:mod:`triage.pipeline.plan`, read by every check)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Plan:
    """What to look at for one alert. Lists are ordered best guess first."""

    window_start: datetime
    window_end: datetime
    starts_at: datetime
    checks: tuple[str, ...]
    instance: str | None = None
    job: str | None = None
    hosts: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    vmid: int | None = None
    services: tuple[str, ...] = ()
    namespace: str | None = None
    mountpoint: str | None = None
    datastore: str | None = None
    device: str | None = None
    severity: str = ""
    dashboard_uid: str | None = None
    panel_id: int | None = None
    runbook_url: str | None = None
    rule_uid: str | None = None
    rule_name: str | None = None
    expr: str | None = None
    guest_hints: tuple[str, ...] = field(default=())

    @property
    def before(self) -> tuple[datetime, datetime]:
        """The baseline part of the window (before the alert started)."""
        return self.window_start, min(self.starts_at, self.window_end)

    @property
    def during(self) -> tuple[datetime, datetime]:
        """The part of the window from the alert's start on (at least one minute)."""
        start = min(self.starts_at, self.window_end - timedelta(minutes=1))
        return start, self.window_end

    @property
    def previous_start(self) -> datetime:
        """Start of the window of equal length just before this one: the baseline of the checks that compare."""
        return self.window_start - (self.window_end - self.window_start)

    @property
    def has_target(self) -> bool:
        return bool(self.instance or self.hosts or self.addresses or self.nodes or self.vmid is not None)
