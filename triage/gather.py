"""Gather: run the planned checks concurrently, each under its own deadline, all under one triage deadline.

A check that fails or runs out of time becomes an ``ok: false`` entry in the report's ``sources`` with its error and
duration (``state`` ``failed`` or ``timeout``); it never fails the triage. Checks whose sources are not configured
are not run and are listed with ``state: not_configured``, so a page can tell "not set up" from "broken".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from reports.models import Evidence, SourceStatus
from tools.errors import SourceError
from triage.checks import CHECKS, CheckSpec
from triage.checks.context import CheckContext, CheckFailed, describe_error

log = logging.getLogger(__name__)


async def _run_one(spec: CheckSpec, ctx: CheckContext, timeout_s: float) -> tuple[list[Evidence], SourceStatus]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            evidence = await spec.run(ctx)
    except TimeoutError:
        ms = (time.perf_counter() - started) * 1000
        return [], SourceStatus(
            ok=False, ms=round(ms, 1), error=f"did not finish within {timeout_s:g}s", state="timeout"
        )
    except Exception as exc:
        ms = (time.perf_counter() - started) * 1000
        log.warning(
            "check failed",
            extra={"check": spec.name, "fingerprint": ctx.alert.fingerprint, "error": type(exc).__name__},
            exc_info=not _expected(exc),
        )
        return [], SourceStatus(ok=False, ms=round(ms, 1), error=describe_error(exc), state="failed")
    ms = (time.perf_counter() - started) * 1000
    return evidence, SourceStatus(ok=True, ms=round(ms, 1), state="ok")


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


async def gather(
    ctx: CheckContext, names: Sequence[str], *, check_timeout_s: float, deadline_s: float
) -> tuple[list[Evidence], dict[str, SourceStatus]]:
    """Run the checks ``names``; return all their evidence and one status per check (and per failed sub-source)."""
    statuses: dict[str, SourceStatus] = {}
    tasks: dict[str, asyncio.Task[tuple[list[Evidence], SourceStatus]]] = {}
    for name in names:
        spec = CHECKS[name]
        if not spec.configured(ctx.deps):
            statuses[name] = SourceStatus(
                ok=False, error=f"not configured (set {spec.missing_settings()})", state="not_configured"
            )
            continue
        tasks[name] = asyncio.create_task(_run_one(spec, ctx, min(check_timeout_s, deadline_s)), name=f"check:{name}")
    started = time.perf_counter()
    evidence: list[Evidence] = []
    if tasks:
        done, pending = await asyncio.wait(tasks.values(), timeout=deadline_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for name, task in tasks.items():
            if task in done:
                found, status = task.result()
                evidence.extend(found)
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
    return _unique(evidence), statuses
