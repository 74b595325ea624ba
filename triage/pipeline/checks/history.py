"""History check: how often this alert fired before, and what the last report said about it.

Counts earlier reports of the same alert (same fingerprint or alert name) in the report store over
``TRIAGE_HISTORY_DAYS``: never before is *new*, a few times *rare*, often *frequent* (a flapping or chronic alert,
which changes what a good next step is).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from reports.models import Evidence, History
from triage.evidence_facts import facts_data
from triage.pipeline.checks.check_context import CheckContext, evidence_id
from triage.pipeline.checks.result import NO_EVIDENCE, CheckResult
from triage.pipeline.checks.spec import CheckSpec

NAME = "history"
FREQUENT_FROM = 5


def frequency(count: int) -> Literal["new", "rare", "frequent"]:
    if count == 0:
        return "new"
    return "frequent" if count >= FREQUENT_FROM else "rare"


async def run(ctx: CheckContext) -> CheckResult:
    """Earlier reports of this alert as the alert's history; a frequent alert is also evidence."""
    store = ctx.deps.store
    if store is None:
        return NO_EVIDENCE
    days = ctx.history_days
    alert = ctx.alert
    earlier = await store.history(
        fingerprint=alert.fingerprint,
        alertname=alert.alertname,
        since=ctx.now - timedelta(days=days),
        exclude_id=alert.occurrence_key,
    )
    earlier = [r for r in earlier if r.alert.starts_at < alert.starts_at]
    count = len(earlier)
    last = earlier[0] if earlier else None
    history = History(
        frequency=frequency(count),
        count=count,
        window_days=days,
        last_report_id=last.id if last else None,
        last_fired_at=last.alert.starts_at if last else None,
        last_summary=next((r.summary for r in earlier if r.summary), None),
    )
    if count < FREQUENT_FROM:
        return CheckResult((), history=history)
    chronic = Evidence(
        id=evidence_id("hist", "frequent", alert.fingerprint),
        source="history",
        kind="history",
        title=f"{alert.alertname} fired {count} times in the last {days} days (chronic or flapping)",
        detail=f"last at {last.alert.starts_at:%Y-%m-%d %H:%M} UTC" if last else "",
        score=0.35,
        data=facts_data(count=count),
    )
    return CheckResult((chronic,), history=history)


CHECK = CheckSpec(NAME, run, sources=("store",))
