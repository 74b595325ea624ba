"""Evidence checks: one module each, ``async def run(ctx: CheckContext) -> CheckResult``.

Each check module declares its :class:`CheckSpec` once, as ``CHECK``: its name, its function and the data sources
it reads. ``CHECKS`` maps every check name (the names :mod:`triage.pipeline.plan` plans with, taken from the same specs) to
its spec, in the order the checks run and report.
"""

from __future__ import annotations

from collections.abc import Iterable

from triage.pipeline.checks import (
    alert_signal,
    backups,
    changes,
    guest_status,
    guest_storage,
    history,
    log_errors,
    metric_shifts,
    runbook_search,
    saturation,
)
from triage.pipeline.checks.spec import SOURCE_SETTINGS, CheckFn, CheckSpec

__all__ = ["CHECKS", "SOURCE_SETTINGS", "CheckFn", "CheckSpec", "registry"]


def registry(specs: Iterable[CheckSpec]) -> dict[str, CheckSpec]:
    """The specs by name; two checks with one name are a mistake caught at import."""
    found: dict[str, CheckSpec] = {}
    for spec in specs:
        if spec.name in found:
            raise ValueError(f"two checks are named {spec.name!r}")
        found[spec.name] = spec
    return found


CHECKS = registry(
    module.CHECK
    for module in (
        alert_signal,
        saturation,
        metric_shifts,
        log_errors,
        changes,
        guest_status,
        guest_storage,
        backups,
        runbook_search,
        history,
    )
)
