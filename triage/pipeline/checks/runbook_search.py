"""Runbook check: the runbook sections that match the alert (its ``runbook_url`` first), for ``report.runbooks``.

Runbooks are guidance, not observations, so they are not evidence: they go to the report's runbook section and,
in short, into the prompt.
"""

from __future__ import annotations

from reports.models import RunbookMatch
from triage.pipeline.checks.check_context import CheckContext
from triage.pipeline.checks.result import CheckResult
from triage.pipeline.checks.spec import CheckSpec

NAME = "runbooks"
LIMIT = 5


def linked_runbook(url: str) -> RunbookMatch:
    return RunbookMatch(title="Runbook linked from the alert", source=url, section="", score=1.0, url=url)


async def run(ctx: CheckContext) -> CheckResult:
    """Hybrid (vector + keyword) runbook matches for the alert, the linked runbook first; no evidence."""
    matches: list[RunbookMatch] = []
    url = ctx.plan.runbook_url
    if url and url.startswith(("http://", "https://")):
        matches.append(linked_runbook(url))
    if ctx.deps.runbooks is not None:
        found = await ctx.deps.runbooks.matches_for_alert(ctx.alert, LIMIT)
        matches.extend(m for m in found if not url or m.url != url)
    return CheckResult((), runbooks=tuple(matches[:LIMIT]))


CHECK = CheckSpec(NAME, run, sources=("runbooks",), always=True)
