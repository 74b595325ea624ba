"""What names a check: its name, its function and the data sources it reads. Every check module declares one
(``CHECK``); :mod:`triage.pipeline.checks` gathers them and :mod:`triage.pipeline.plan` plans with them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from triage.deps import Deps
from triage.pipeline.checks.check_context import CheckContext
from triage.pipeline.checks.result import CheckResult
from triage.sources import SOURCES, slot_of

CheckFn = Callable[[CheckContext], Awaitable[CheckResult]]

# what a user sets to configure each source (named in "not configured" entries of a report): the data sources'
# from the registry, then what a triage reads besides them
SOURCE_SETTINGS = {
    **{spec.name: spec.enable_setting for spec in SOURCES},
    "runbooks": "the runbook index (sre-triage ingest)",
    "store": "DATABASE_URL",
}


@dataclass(frozen=True)
class CheckSpec:
    """A check runs when at least one of its ``sources`` is configured on :class:`Deps`, or ``always``.

    ``sources`` are source names (:data:`triage.sources.SOURCES`) or the other fields of :class:`Deps` a check reads
    (``runbooks``, ``store``); a source is configured when its Deps field (its ``slot``) holds a client.
    """

    name: str
    run: CheckFn
    sources: tuple[str, ...]
    always: bool = False

    def configured(self, deps: Deps) -> bool:
        return self.always or any(getattr(deps, slot_of(source), None) is not None for source in self.sources)

    def missing_settings(self) -> str:
        return " or ".join(SOURCE_SETTINGS.get(s, s) for s in self.sources)
