"""Gather: run the planned checks concurrently, each under its own deadline, all under one triage deadline.

A check that fails or runs out of time becomes an ``ok: false`` entry in the report's ``sources`` with its error and
duration (``state`` ``failed`` or ``timeout``); it never fails the triage. Checks whose sources are not configured
are not run and are listed with ``state: not_configured``, so a page can tell "not set up" from "broken".
What the checks that finished returned is kept per check (:class:`Gathered`): their evidence, runbook sections and
the alert's history.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from reports.models import Evidence, History, RunbookMatch, SourceStatus
from tools.errors import SourceError
from triage.pipeline.checks import CHECKS, CheckSpec
from triage.pipeline.checks.check_context import CheckContext, CheckFailed, describe_error
from triage.pipeline.checks.result import CheckResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gathered:
    """What the checks found: the result of every check that finished, one status per check and failed sub-source."""

    results: dict[str, CheckResult]
    sources: dict[str, SourceStatus]

    @property
    def evidence(self) -> list[Evidence]:
        """Every check's evidence in plan order; a repeated id gets a suffix."""
        return _unique([item for result in self.results.values() for item in result.evidence])

    @property
    def runbooks(self) -> list[RunbookMatch]:
        return [match for result in self.results.values() for match in result.runbooks]

    @property
    def history(self) -> History | None:
        return next((r.history for r in self.results.values() if r.history is not None), None)


async def _run_one(spec: CheckSpec, ctx: CheckContext, timeout_s: float) -> tuple[CheckResult | None, SourceStatus]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            result = await spec.run(ctx)
    except TimeoutError:
        ms = (time.perf_counter() - started) * 1000
        return None, SourceStatus(
            ok=False, ms=round(ms, 1), error=f"did not finish within {timeout_s:g}s", state="timeout"
        )
    except Exception as exc:
        ms = (time.perf_counter() - started) * 1000
        log.warning(
            "check failed",
            extra={"check": spec.name, "fingerprint": ctx.alert.fingerprint, "error": type(exc).__name__},
            exc_info=not _expected(exc),
        )
        return None, SourceStatus(ok=False, ms=round(ms, 1), error=describe_error(exc), state="failed")
    ms = (time.perf_counter() - started) * 1000
    return result, SourceStatus(ok=True, ms=round(ms, 1), state="ok")


def _expected(exc: Exception) -> bool:
    return isinstance(exc, SourceError | CheckFailed)


def _unique(evidence: list[Evidence]) -> list[Evidence]:
    seen: dict[str, int] = {}
    unique: list[Evidence] = []
    for item in evidence:
        count = seen.get(item.id, 0)
        seen[item.id] = count + 1
        unique.append(item if count == 0 else item.model_copy(update={"id": f"{item.id}-{count + 1}"}))
    return unique


async def gather(ctx: CheckContext, names: Sequence[str], *, check_timeout_s: float, deadline_s: float) -> Gathered:
    """Run the checks ``names``; return what they found and one status per check (and per failed sub-source)."""
    statuses: dict[str, SourceStatus] = {}
    tasks: dict[str, asyncio.Task[tuple[CheckResult | None, SourceStatus]]] = {}
    for name in names:
        spec = CHECKS[name]
        if not spec.configured(ctx.deps):
            statuses[name] = SourceStatus(
                ok=False, error=f"not configured (set {spec.missing_settings()})", state="not_configured"
            )
            continue
        tasks[name] = asyncio.create_task(_run_one(spec, ctx, min(check_timeout_s, deadline_s)), name=f"check:{name}")
    started = time.perf_counter()
    results: dict[str, CheckResult] = {}
    if tasks:
        done, pending = await asyncio.wait(tasks.values(), timeout=deadline_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for name, task in tasks.items():
            if task in done:
                result, status = task.result()
                if result is not None:
                    results[name] = result
                statuses[name] = status
            else:
                ms = (time.perf_counter() - started) * 1000
                statuses[name] = SourceStatus(
                    ok=False,
                    ms=round(ms, 1),
                    error=f"did not finish within the triage deadline of {deadline_s:g}s",
                    state="timeout",
                )
    await ctx.close()
    statuses.update(ctx.partial_failures)
    return Gathered(results, statuses)
