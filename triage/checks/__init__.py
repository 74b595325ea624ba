"""Evidence checks: one module each, ``async def run(ctx: CheckContext) -> CheckResult``.

``CHECKS`` maps a check name (the names :mod:`triage.plan` plans with) to its function and the data sources it
reads; a check runs when at least one of its sources is configured (``always`` checks run regardless).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from triage.checks import (
    alert_signal,
    backups,
    changes,
    guest_status,
    guest_storage,
    history,
    log_errors,
    metric_shifts,
    runbooks,
    saturation,
)
from triage.checks.context import CheckContext
from triage.checks.result import CheckResult
from triage.deps import Deps

CheckFn = Callable[[CheckContext], Awaitable[CheckResult]]

# what a user sets to configure each source (named in "not configured" entries of a report)
SOURCE_SETTINGS = {
    "prometheus": "PROMETHEUS_URL",
    "loki": "LOKI_URL",
    "grafana": "GRAFANA_URL",
    "proxmox": "PROXMOX_URL",
    "pbs": "PBS_URL",
    "runbooks": "the runbook index (sre-triage ingest)",
    "store": "DATABASE_URL",
}


@dataclass(frozen=True)
class CheckSpec:
    name: str
    run: CheckFn
    sources: tuple[str, ...]
    always: bool = False

    def configured(self, deps: Deps) -> bool:
        return self.always or any(getattr(deps, source, None) is not None for source in self.sources)

    def missing_settings(self) -> str:
        return " or ".join(SOURCE_SETTINGS.get(s, s) for s in self.sources)


CHECKS: dict[str, CheckSpec] = {
    spec.name: spec
    for spec in (
        CheckSpec(alert_signal.NAME, alert_signal.run, alert_signal.SOURCES),
        CheckSpec(saturation.NAME, saturation.run, saturation.SOURCES),
        CheckSpec(metric_shifts.NAME, metric_shifts.run, metric_shifts.SOURCES),
        CheckSpec(log_errors.NAME, log_errors.run, log_errors.SOURCES),
        CheckSpec(changes.NAME, changes.run, changes.SOURCES),
        CheckSpec(guest_status.NAME, guest_status.run, guest_status.SOURCES),
        CheckSpec(guest_storage.NAME, guest_storage.run, guest_storage.SOURCES),
        CheckSpec(backups.NAME, backups.run, backups.SOURCES),
        CheckSpec(runbooks.NAME, runbooks.run, runbooks.SOURCES, always=True),
        CheckSpec(history.NAME, history.run, history.SOURCES),
    )
}
